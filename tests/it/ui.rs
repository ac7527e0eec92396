//! Compile-fail cases of the macros (`ui-tests/*.rs`, with their committed `.stderr`), and
//! the forms they must accept (`ui-tests/pass/*.rs`).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui-tests/*.rs");
    cases.pass("ui-tests/pass/*.rs");
}
