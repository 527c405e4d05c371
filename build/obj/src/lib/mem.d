build/obj/src/lib/mem.o: src/lib/mem.c src/lib/log.h src/lib/mem.h
src/lib/log.h:
src/lib/mem.h:
