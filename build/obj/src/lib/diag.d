build/obj/src/lib/diag.o: src/lib/diag.c src/lib/diag.h src/lib/log.h \
 src/lib/mem.h src/lib/str.h
src/lib/diag.h:
src/lib/log.h:
src/lib/mem.h:
src/lib/str.h:
