# The NixOS options that nix/module.nix defines or reads outside services.meshmon, declared with
# the same types as in nixpkgs (trimmed to the sub-options used), plus `renderUnit`, which writes
# a systemd service the way nixpkgs' systemd-lib does (Unit/Service/Install sections; a list
# value is one line per element, so an empty list writes no line; true/false for booleans; the
# service's `path` becomes Environment=PATH=... after NixOS's default path).
{ lib, pkgs }:
let
  inherit (lib) types mkOption;
  listOfStr = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  unitOption = lib.mkOptionType {
    name = "systemd option";
    check = x: builtins.isBool x || builtins.isInt x || lib.isStringLike x || builtins.isList x;
    # As nixpkgs' unitOption: lists are concatenated, anything else must agree.
    merge =
      loc: defs:
      if builtins.all (d: builtins.isList d.value) defs then
        builtins.concatLists (map (d: d.value) defs)
      else
        lib.mergeEqualOption loc defs;
  };
  serviceModule = {
    options = {
      enable = mkOption {
        type = types.bool;
        default = true;
      };
      description = mkOption {
        type = types.str;
        default = "";
      };
      documentation = listOfStr;
      wantedBy = listOfStr;
      requiredBy = listOfStr;
      wants = listOfStr;
      requires = listOfStr;
      after = listOfStr;
      before = listOfStr;
      path = mkOption {
        type = types.listOf (types.either types.package types.str);
        default = [ ];
      };
      environment = mkOption {
        type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
        default = { };
      };
      restartTriggers = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      serviceConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
      unitConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
      script = mkOption {
        type = types.lines;
        default = "";
      };
    };
  };
  etcModule = {
    options = {
      enable = mkOption {
        type = types.bool;
        default = true;
      };
      source = mkOption {
        type = types.nullOr types.path;
        default = null;
      };
      text = mkOption {
        type = types.nullOr types.lines;
        default = null;
      };
      mode = mkOption {
        type = types.str;
        default = "symlink";
      };
    };
  };

  toOption =
    x:
    if x == true then
      "true"
    else if x == false then
      "false"
    else
      toString x;
  attrsToSection =
    as:
    lib.concatStrings (
      builtins.concatLists (
        lib.mapAttrsToList (
          name: value: map (x: "${name}=${toOption x}\n") (if builtins.isList value then value else [ value ])
        ) as
      )
    );
  defaultPath = [
    pkgs.coreutils
    pkgs.findutils
    pkgs.gnugrep
    pkgs.gnused
    pkgs.systemd
  ];
in
{
  module = {
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      warnings = listOfStr;
      environment.etc = mkOption {
        type = types.attrsOf (types.submodule etcModule);
        default = { };
      };
      environment.systemPackages = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      networking.firewall.allowedTCPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
      networking.firewall.allowedUDPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
      systemd.services = mkOption {
        type = types.attrsOf (types.submodule serviceModule);
        default = { };
      };
      # Read by the module's defaults (`or false` keeps it working where they are absent).
      virtualisation.docker.enable = mkOption {
        type = types.bool;
        default = false;
      };
      services.smartd.enable = mkOption {
        type = types.bool;
        default = false;
      };
      # Read-only in nixpkgs: true when the NVIDIA driver is configured (videoDrivers or
      # datacenter); settable here so that tests can stand for such a machine.
      hardware.nvidia.enabled = mkOption {
        type = types.bool;
        default = false;
      };
    };
  };

  renderUnit =
    svc:
    let
      path = defaultPath ++ svc.path;
      env = svc.environment // {
        PATH = "${lib.makeBinPath path}:${lib.concatMapStringsSep ":" (p: "${p}/sbin") path}";
      };
      joined = name: xs: lib.optionalString (xs != [ ]) "${name}=${toString xs}\n";
    in
    "[Unit]\n"
    + lib.optionalString (svc.description != "") "Description=${svc.description}\n"
    + joined "Documentation" svc.documentation
    + joined "Wants" svc.wants
    + joined "Requires" svc.requires
    + joined "After" svc.after
    + joined "Before" svc.before
    + attrsToSection svc.unitConfig
    + "\n[Service]\n"
    + lib.concatStrings (lib.mapAttrsToList (n: v: "Environment=\"${n}=${toString v}\"\n") env)
    + attrsToSection svc.serviceConfig
    + "\n[Install]\n"
    + joined "WantedBy" svc.wantedBy
    + joined "RequiredBy" svc.requiredBy;
}
