build/obj/src/lib/log.o: src/lib/log.c src/lib/clock.h src/lib/log.h
src/lib/clock.h:
src/lib/log.h:
