//! `bare-pingora`: the framework's floor for benchmarks, Pingora as it ships (see
//! `edge::bare`).

fn main() {
    edge::bare::main("bare-pingora");
}
