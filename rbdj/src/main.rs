//! The `rbdj` binary.

fn main() {
    println!("rbdj: commands arrive with the CLI issue");
}
