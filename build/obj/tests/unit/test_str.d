build/obj/tests/unit/test_str.o: tests/unit/test_str.c src/lib/stream.h \
 src/lib/str.h src/lib/str.h tests/unit/unit.h src/lib/log.h
src/lib/stream.h:
src/lib/str.h:
src/lib/str.h:
tests/unit/unit.h:
src/lib/log.h:
