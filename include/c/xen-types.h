/* xen-types.h: types needed to include the Xen public headers
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. */

#ifndef _XEN_TYPES_H
#define _XEN_TYPES_H

#include <ntddk.h>

typedef CHAR    int8_t;
typedef SHORT   int16_t;
typedef LONG    int32_t;
typedef LONG64  int64_t;
typedef UCHAR   uint8_t;
typedef USHORT  uint16_t;
typedef ULONG   uint32_t;
typedef ULONG64 uint64_t;

#define xen_mb()    KeMemoryBarrier()
#if defined(_M_IX86) || defined(_M_X64) || defined(__x86_64__) || defined(__i386__)
#define xen_wmb()   KeMemoryBarrierWithoutFence()
#define xen_rmb()   KeMemoryBarrierWithoutFence()
#else
#define xen_wmb()   KeMemoryBarrier()
#define xen_rmb()   KeMemoryBarrier()
#endif

#endif  // _XEN_TYPES_H
