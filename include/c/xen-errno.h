/* xen-errno.h: Xen errno to NTSTATUS
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. */

#ifndef _XEN_ERRNO_H
#define _XEN_ERRNO_H

#include <ntddk.h>

#ifndef EISDIR
#define EISDIR 21
#endif
#ifndef EROFS
#define EROFS 30
#endif
#ifndef ENOTEMPTY
#define ENOTEMPTY 39
#endif

#define ERRNO_TO_STATUS(_errno, _status) \
        do { \
            switch (_errno) { \
            case 22: /* EINVAL */ \
                _status = STATUS_INVALID_PARAMETER; \
                break; \
            case 13: /* EACCES */ \
                _status = STATUS_ACCESS_DENIED; \
                break; \
            case 1: /* EPERM */ \
                _status = STATUS_ACCESS_DENIED; \
                break; \
            case 17: /* EEXIST */ \
                _status = STATUS_OBJECTID_EXISTS; \
                break; \
            case 21: /* EISDIR */ \
                _status = STATUS_FILE_IS_A_DIRECTORY; \
                break; \
            case 2: /* ENOENT */ \
                _status = STATUS_OBJECT_NAME_NOT_FOUND; \
                break; \
            case 12: /* ENOMEM */ \
                _status = STATUS_NO_MEMORY; \
                break; \
            case 28: /* ENOSPC */ \
                _status = STATUS_INSUFFICIENT_RESOURCES; \
                break; \
            case 5: /* EIO */ \
                _status = STATUS_UNEXPECTED_IO_ERROR; \
                break; \
            case 39: /* ENOTEMPTY */ \
                _status = STATUS_DIRECTORY_NOT_EMPTY; \
                break; \
            case 38: /* ENOSYS */ \
                _status = STATUS_NOT_IMPLEMENTED; \
                break; \
            case 30: /* EROFS */ \
                _status = STATUS_MEDIA_WRITE_PROTECTED; \
                break; \
            case 16: /* EBUSY */ \
                _status = STATUS_PIPE_BUSY; \
                break; \
            case 11: /* EAGAIN */ \
                _status = STATUS_RETRY; \
                break; \
            case 106: /* EISCONN */ \
                _status = STATUS_PIPE_CONNECTED; \
                break; \
            default: \
                _status = STATUS_UNSUCCESSFUL; \
                break; \
            } \
        } while (FALSE)

#endif  // _XEN_ERRNO_H
