/* revision.h: PDO revision table (interface versions per revision)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. */

#ifndef _REVISION_H
#define _REVISION_H

// Key:
// S  - XENBUS_SUSPEND_INTERFACE
// SI - XENBUS_SHARED_INFO_INTERFACE
// E  - XENBUS_EVTCHN_INTERFACE
// D  - XENBUS_DEBUG_INTERFACE
// ST - XENBUS_STORE_INTERFACE
// R  - XENBUS_RANGE_SET_INTERFACE
// C  - XENBUS_CACHE_INTERFACE
// G  - XENBUS_GNTTAB_INTERFACE
// U  - XENBUS_UNPLUG_INTERFACE
// CO - XENBUS_CONSOLE_INTERFACE
// EM - XENFILT_EMULATED_INTERFACE

//                    REVISION   S  SI   E   D  ST   R   C   G   U  CO  EM
#define DEFINE_REVISION_TABLE \
    DEFINE_REVISION(0x09000008,  1,  3,  9,  1,  2,  1,  2,  4,  1,  1,  2), \
    DEFINE_REVISION(0x09000009,  1,  4,  9,  1,  2,  1,  2,  4,  1,  1,  2), \
    DEFINE_REVISION(0x0900000A,  1,  4,  9,  1,  2,  1,  2,  4,  2,  1,  2), \
    DEFINE_REVISION(0x0900000B,  1,  4,  9,  1,  2,  1,  2,  4,  3,  1,  2), \
    DEFINE_REVISION(0x0900000C,  1,  4,  9,  1,  2,  1,  2,  4,  3,  1,  3)

#endif  // _REVISION_H
