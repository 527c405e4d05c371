/*
 * version.h - the Postern release.
 */
#ifndef POSTERN_VERSION_H
#define POSTERN_VERSION_H

#define POSTERN_VERSION "0.1.0"

#endif
