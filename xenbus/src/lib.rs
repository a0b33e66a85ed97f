//! xenbus.sys: the WDM bus driver on the Xen platform PCI device.
#![cfg_attr(not(test), no_std)]
