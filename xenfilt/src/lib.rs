//! xenfilt.sys: the upper filter that tracks and unplugs emulated devices.
#![cfg_attr(not(test), no_std)]
