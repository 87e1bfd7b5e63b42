//! `bare-pingora-mimalloc`: the benchmark floor with `tollgate`'s allocator (see
//! `edge::bare`).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    edge::bare::main("bare-pingora-mimalloc");
}
