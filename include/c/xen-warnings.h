/* xen-warnings.h: warnings disabled to include the Xen public headers
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. */

#ifndef _XEN_WARNINGS_H
#define _XEN_WARNINGS_H

#include <ntddk.h>

#ifdef _MSC_VER
#pragma warning(disable:4214) // nonstandard extension used : bit field types other than int
#pragma warning(disable:4200) // nonstandard extension used : zero-sized array in struct/union
#pragma warning(disable:4820) // padding added after data member
#endif

#endif  // _XEN_WARNINGS_H
