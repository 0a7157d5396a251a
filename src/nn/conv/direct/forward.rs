//! (see the module above)
