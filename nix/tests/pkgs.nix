# A stand-in for the few parts of nixpkgs' `pkgs` that nix/module.nix and nix/package.nix use.
# Derivations are attribute sets with type = "derivation", a name and an outPath in the store
# (a made-up hash), so they interpolate into strings like real ones; nothing is ever built.
# `rustPlatform.buildRustPackage` keeps its arguments (as `args`) for the tests to inspect.
{ lib }:
let
  drv =
    name: attrs:
    attrs
    // {
      type = "derivation";
      inherit name;
      outPath = "${builtins.storeDir}/${builtins.substring 0 32 (builtins.hashString "sha256" name)}-${name}";
    };
  pkgs = {
    inherit lib;
    stdenv.hostPlatform.system = "x86_64-linux";
    writeText = name: text: drv name { inherit text; };
    callPackage =
      fn: overrides:
      let
        f = if builtins.isFunction fn then fn else import fn;
      in
      f (builtins.intersectAttrs (builtins.functionArgs f) (pkgs // overrides));
    rustPlatform.buildRustPackage =
      args:
      drv "${args.pname}-${args.version}" {
        inherit args;
        inherit (args) pname version meta;
      };
    smartmontools = drv "smartmontools-7.4" { meta.mainProgram = "smartctl"; };
    coreutils = drv "coreutils-9.5" { };
    findutils = drv "findutils-4.10.0" { };
    gnugrep = drv "gnugrep-3.11" { };
    gnused = drv "gnused-4.9" { };
    systemd = drv "systemd-256.8" { };
  };
in
pkgs
