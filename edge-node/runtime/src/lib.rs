//! The SirsiNexus WebAssembly runtime.
