build/obj/src/lib/str.o: src/lib/str.c src/lib/log.h src/lib/mem.h \
 src/lib/str.h
src/lib/log.h:
src/lib/mem.h:
src/lib/str.h:
