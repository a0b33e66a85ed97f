//! xen.sys: the export driver (hypercalls, grant/event/memory ops, logging, unplug).
#![cfg_attr(not(test), no_std)]
