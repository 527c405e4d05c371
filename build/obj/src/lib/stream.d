build/obj/src/lib/stream.o: src/lib/stream.c src/lib/clock.h \
 src/lib/mem.h src/lib/stream.h src/lib/str.h
src/lib/clock.h:
src/lib/mem.h:
src/lib/stream.h:
src/lib/str.h:
