# The meshmon binary, built from this repository with nixpkgs' Rust tooling. Needs a nixpkgs
# whose rustc is at least the workspace's rust-version (1.95; edition 2024).
{ lib, rustPlatform }:

let
  workspace = (lib.importTOML ../Cargo.toml).workspace;
in
rustPlatform.buildRustPackage {
  pname = "meshmon";
  inherit (workspace.package) version;

  # Only what cargo needs, so editing docs, scripts or nix/ does not rebuild the binary.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../agent
      ../dashboard
      ../proto
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  cargoBuildFlags = [
    "--package"
    "meshmon-agent"
    "--bin"
    "meshmon"
  ];

  # Unit tests only: the integration tests start meshes of agents and need python3 with pyzmq
  # and tmux. The collector tests compare readings with this machine's /proc, /sys and mounts,
  # which the build sandbox does not have.
  cargoTestFlags = [
    "--workspace"
    "--lib"
  ];
  checkFlags = [ "--skip=collect::" ];

  meta = {
    description = "Server-monitoring mesh: tiny agents, no central server, the whole fleet from any node";
    license = lib.licenses.mit;
    mainProgram = "meshmon";
    platforms = lib.platforms.linux;
  };
}
