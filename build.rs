//! Records the git commit Bazaar is built from, where there is one, for the tags of the runs
//! it logs to MLflow (`BAZAAR_GIT_COMMIT`); a build outside a repository records none.

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
        println!("cargo:rerun-if-changed=.git/{head}");
        println!("cargo:rerun-if-changed=.git/packed-refs");
    }
    if let Some(commit) = git(&["rev-parse", "HEAD"]) {
        println!("cargo:rustc-env=BAZAAR_GIT_COMMIT={commit}");
    }
}
