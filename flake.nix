{
  description = "meshmon: a server-monitoring mesh (package and NixOS module)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = nixpkgs.lib.genAttrs systems;
    in
    {
      packages = forAllSystems (system: {
        default = nixpkgs.legacyPackages.${system}.callPackage ./nix/package.nix { };
      });

      overlays.default = final: prev: { meshmon = final.callPackage ./nix/package.nix { }; };

      # services.meshmon; its `package` defaults to building nix/package.nix with the system's
      # own nixpkgs (set it to meshmon.packages.<system>.default to use this flake's pin).
      nixosModules.default = ./nix/module.nix;
    };
}
