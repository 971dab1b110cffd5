# The meshmon binary, built from this repository with nixpkgs' Rust tooling. Needs a nixpkgs
# whose rustc is at least the workspace's rust-version (1.95; edition 2024).
{
  lib,
  rustPlatform,
  # The plain agent: `--no-default-features`, without the dashboard role, the TUI, the
  # Prometheus endpoint, self-update, the GPU collector and HTTP checks (no SQLite, ratatui,
  # reqwest or rustls). `pkgs.callPackage ./nix/package.nix { plain = true; }`.
  plain ? false,
}:

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
      # Workspace members inside agent/ (already in it; named so each member is listed).
      ../agent/core
      ../agent/sim
      ../dashboard
      ../proto
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  buildNoDefaultFeatures = plain;

  # The rustflags of .cargo/config.toml (Poly1305's portable backend: mesh frames open in about
  # half the time), passed as the environment, which cargo reads before any config file.
  env.RUSTFLAGS = lib.concatStringsSep " " (lib.importTOML ../.cargo/config.toml).build.rustflags;

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
