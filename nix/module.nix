# NixOS module for meshmon: `services.meshmon`.
#
# The settings are typed options that mirror meshmon's config file (see README.md,
# "Configuration reference"); they are written to a TOML file in the Nix store, and the service
# runs `meshmon agent --config <that file>` as a dynamic user in a hardened sandbox. The mesh key
# never enters the store: `keyFile` is a path on the machine, handed to the service by systemd
# as a credential; so are the webhook URL files (`settings.notify.slack_webhook_file`,
# `settings.notify.webhooks_file`).
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    mkEnableOption
    mkIf
    mkOption
    literalExpression
    optional
    optionalAttrs
    types
    ;

  cfg = config.services.meshmon;
  toml = import ./toml.nix;

  # Durations as meshmon reads them: `500ms`, `30s`, `5m`, `12h`, `7d`, `1w`, sums like `1h30m`.
  duration = types.strMatching "([0-9]+(ms|s|m|h|d|w))+|0";
  # `ip:port` or `[ipv6]:port` (listen: meshmon takes no host name there) and `host:port`.
  ipPort = types.strMatching "(([0-9]{1,3}[.]){3}[0-9]{1,3}|[[][0-9A-Fa-f:.]+]):[1-9][0-9]{0,4}";
  hostPort = types.strMatching "[^ ]+:[1-9][0-9]{0,4}";
  httpUrl = types.strMatching "https?://.+";
  # A secret file: an absolute path on the machine, given as a string (a Nix path would be
  # copied into the store), or "" for none.
  secretFile = types.either (types.enum [ "" ]) (types.strMatching "/.+");

  opt =
    type: default: description:
    mkOption { inherit type default description; };

  checkModule = {
    options = {
      name = mkOption {
        type = types.strMatching ".+";
        description = "Check name (the `check` label of `check.*` metrics).";
      };
      url = mkOption {
        type = httpUrl;
        description = "http:// or https:// URL to request.";
      };
      interval = opt duration "30s" "How often the check runs.";
      timeout = opt duration "5s" "Request timeout.";
      expect_status = opt (types.ints.between 100 599) 200 "Expected HTTP status.";
      body_contains = opt (types.nullOr types.str) null "Text the body must contain (null: any body).";
      ca_file = opt (types.nullOr types.str) null "PEM file of extra trusted root certificates, added to the system's (null: none).";
      insecure = opt types.bool false "Accept any certificate (days left are still reported).";
    };
  };

  # Every key but `name` is optional and left out of the file while null: a rule named like a
  # built-in (`disk-full`, `host-down`, ...) changes only the keys it gives, so a default here
  # would override the built-in's. Other rules need `metric`, `op` and `threshold`; meshmon
  # reports a missing one itself (`meshmon check-config`).
  alertModule = {
    options = {
      name = mkOption {
        type = types.strMatching ".+";
        description = "Rule name; a built-in's name (`disk-full`, `host-down`, ...) overrides that built-in.";
      };
      metric = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = ''disk.used_pct{mount="/"}'';
        description = "Metric selector: `name` or `name{label=\"value\",...}` (null: not set).";
      };
      hosts = opt (types.nullOr types.str) null "Glob on host names (null: not set; meshmon's default `*`).";
      tags = opt (types.nullOr (types.listOf types.str)) null "Tags a host must all have, from its `node.tags` (null: not set; meshmon's default `[]`).";
      op = opt (types.nullOr (types.enum [
        ">"
        ">="
        "<"
        "<="
        "abs>"
        "increase"
      ])) null "Comparison of the value with `threshold` (`abs>`: the value's magnitude is above it), or `increase` (the value rose since the previous reading) (null: not set).";
      threshold = mkOption {
        type = types.nullOr types.number;
        default = null;
        # meshmon reads a float; TOML would read `90` as an integer.
        apply = t: if t == null then null else t + 0.0;
        description = "Threshold the value is compared with (written to the file as a float; null: not set).";
      };
      clear_threshold = mkOption {
        type = types.nullOr types.number;
        default = null;
        apply = t: if t == null then null else t + 0.0;
        description = ''
          Hysteresis: a firing alert resolves only once the value is past this (below it for
          `>`/`>=`, above it for `<`/`<=`). Written as a float; null: not set.
        '';
      };
      for = opt (types.nullOr duration) null "How long the condition must hold before the alert fires (null: not set; meshmon's default `0s`).";
      severity = opt (types.nullOr (types.enum [
        "info"
        "warning"
        "critical"
      ])) null "Severity (null: not set; meshmon's default `warning`).";
      repeat = opt (types.nullOr duration) null "Reminder interval while firing; \"0s\" = never (null: not set; meshmon's default `4h`).";
      enabled = opt (types.nullOr types.bool) null "`false` switches the rule, or the built-in of that name, off (null: not set; meshmon's default `true`).";
    };
  };

  settingsModule = {
    options = {
      node = {
        name = mkOption {
          type = types.nullOr (types.strMatching "[A-Za-z0-9._-]{1,64}");
          default = null;
          description = "Node name, unique in the mesh (null: the hostname).";
        };
        listen = mkOption {
          type = ipPort;
          default = "127.0.0.1:6130";
          example = "0.0.0.0:6130";
          description = ''
            The one mesh port of this node, `ip:port`. A non-loopback address needs `keyFile`.
            `openFirewall` opens this port.
          '';
        };
        neighbours = opt (types.listOf hostPort) [ ] ''
          `host:port` of nodes this node dials. A link carries frames both ways, so configure
          each link on one side only.
        '';
        max_hops = opt (types.ints.between 1 255) 8 "Frames travel at most this many links from their origin.";
        tags = opt (types.listOf types.str) [ ] "Free-form tags.";
      };

      collect = {
        interval = opt duration "1s" "Core metrics interval (at least 100ms).";
        docker_dir = mkOption {
          type = types.str;
          default = if config.virtualisation.docker.enable or false then "/var/lib/docker" else "";
          defaultText = literalExpression ''if config.virtualisation.docker.enable then "/var/lib/docker" else ""'';
          description = ''
            Docker directory whose size is reported (`docker.dir_bytes`); `""` turns the collector
            off. Walking it needs `CAP_DAC_READ_SEARCH`, which the service is granted only while
            this is not `""` (and then runs without `PrivateUsers`).
          '';
        };
        docker_interval = opt duration "5m" "How often the Docker directory is walked.";
        smartctl = mkOption {
          type = types.str;
          default = if config.services.smartd.enable or false then "smartctl" else "";
          defaultText = literalExpression ''if config.services.smartd.enable then "smartctl" else ""'';
          example = "smartctl";
          description = ''
            smartctl program (a path, or `"smartctl"`, which puts `pkgs.smartmontools` on the
            service's PATH); `""` turns SMART off. While this is not `""` the service is granted
            `CAP_SYS_RAWIO` (SATA/SAS pass-through commands), read-write access to the disk device
            nodes (`block-sd`, `block-blkext`, `char-nvme`, group `disk`) instead of
            `PrivateDevices`, and no `PrivateUsers`. Reading NVMe health logs also needs
            `CAP_SYS_ADMIN`: add it with `extraCapabilities` if you want it.
          '';
        };
        smart_interval = opt duration "10m" "How often SMART data is read.";
        textfile_dir = opt types.str "" ''
          Directory of node_exporter-style `*.prom` files (`""`: none). It must be readable by
          a dynamic user and not under /home (`ProtectHome`).
        '';
        systemd_units = opt (types.listOf types.str) [ ] "systemd units to watch, e.g. `nginx.service`.";
        cgroup_root = opt types.str "/sys/fs/cgroup" "Root of the cgroup file system the systemd collector reads.";
        gpu = mkOption {
          type = types.bool;
          default = config.hardware.nvidia.enabled or false;
          defaultText = literalExpression "config.hardware.nvidia.enabled";
          example = true;
          description = ''
            NVIDIA GPUs through NVML (`gpu.*` metrics). On by default where NixOS runs the NVIDIA
            driver (`hardware.nvidia.enabled`: `services.xserver.videoDrivers` has `"nvidia"`, or
            `hardware.nvidia.datacenter.enable`); set it to `true` for a driver installed some
            other way. While this is on the service finds `libnvidia-ml.so.1` in
            `/run/opengl-driver/lib` (`LD_LIBRARY_PATH`; needs `hardware.graphics.enable`) and is
            granted read-write access to the NVIDIA device nodes (`/dev/nvidiactl`,
            `/dev/nvidia0`, ...: groups `nvidia-frontend`/`nvidia`, and `nvidia-caps` for MIG)
            instead of `PrivateDevices`, with `DevicePolicy=closed`; no capability is added and
            `PrivateUsers` stays on. Where the driver is missing the collector logs one line
            and switches itself off.
          '';
        };
      };

      check = opt (types.listOf (types.submodule checkModule)) [ ] "HTTP(S) service checks run by this node (`[[check]]`).";

      store = {
        path = opt (types.strMatching "/.+") "/var/lib/meshmon/meshmon.db" ''
          SQLite file of a dashboard node. It must be under /var/lib/meshmon, the service's
          StateDirectory: the dynamic user can write nowhere else. To keep the store on another
          disk, mount that disk at /var/lib/private/meshmon.
        '';
        retention = opt duration "7d" "How long raw data is kept.";
      };

      alert = opt (types.listOf (types.submodule alertModule)) [ ] "Alert rules (`[[alert]]`), evaluated on dashboard nodes.";

      notify = {
        slack_webhook = opt (types.either (types.enum [ "" ]) httpUrl) "" ''
          Slack incoming-webhook URL (`""`: none). The URL is a secret (anyone holding it can
          post to the channel) and this lands in the world-readable Nix store: use
          `slack_webhook_file` instead.
        '';
        slack_webhook_file = opt secretFile "" ''
          File on the machine whose first non-empty line is the Slack incoming-webhook URL
          (`""`: none), e.g. `"/run/keys/meshmon-slack"`. Give it as a string, never as a Nix
          path; it may stay `root:root` 0600: systemd loads it as a credential and bind-mounts
          it at this same path inside the sandbox. Not together with `slack_webhook`.
        '';
        webhooks = opt (types.listOf httpUrl) [ ] ''
          Generic JSON webhooks. They land in the Nix store: put URLs that carry a token in
          `webhooks_file`.
        '';
        webhooks_file = opt secretFile "" ''
          File on the machine of more generic webhook URLs, one a line (`#` comments; `""`:
          none). Handed to the service like `slack_webhook_file`.
        '';
        give_up_after = opt duration "24h" "A notification that could not be delivered for this long is given up (`expired` in the outbox).";
      };
    };
  };

  s = cfg.settings;
  smart = s.collect.smartctl != "";
  docker = s.collect.docker_dir != "";
  gpu = s.collect.gpu;
  # Device access replaces PrivateDevices (which hides every device node) only while a
  # collector needs it; the device cgroup then allows exactly these groups (plus the pseudo
  # devices /dev/null, /dev/urandom, ... that DevicePolicy=closed always allows).
  deviceAllow =
    lib.optionals smart [
      "block-sd rw"
      "block-blkext rw"
      "char-nvme rw"
    ]
    # NVML opens /dev/nvidiactl and /dev/nvidiaN (major 195, named `nvidia-frontend` in
    # /proc/devices, `nvidia` by newer drivers) and, on MIG GPUs, /dev/nvidia-caps/*. A name
    # the running driver does not register matches nothing. nvidia-uvm (CUDA memory) is not
    # needed for monitoring.
    ++ lib.optionals gpu [
      "char-nvidia-frontend rw"
      "char-nvidia rw"
      "char-nvidia-caps rw"
    ];

  # Exactly the capabilities the enabled collectors need, nothing when none is enabled.
  capabilities =
    optional smart "CAP_SYS_RAWIO" ++ optional docker "CAP_DAC_READ_SEARCH" ++ cfg.extraCapabilities;

  listenPort = lib.toInt (lib.last (lib.splitString ":" s.node.listen));
  listenHost = lib.removeSuffix ":${toString listenPort}" s.node.listen;
  loopback = lib.hasPrefix "127." listenHost || listenHost == "[::1]";

  keyInStore = cfg.keyFile != null && inStore cfg.keyFile;
  # systemd hands the key to the service as a credential (readable by the dynamic user) and
  # bind-mounts it over keyFile inside the sandbox, so the config names the same path that
  # `meshmon status` and `meshmon tui` read outside it.
  # The webhook URL files are handed over the same way.
  credentials =
    optional (cfg.keyFile != null) {
      name = "mesh.key";
      path = cfg.keyFile;
    }
    ++ optional (s.notify.slack_webhook_file != "") {
      name = "slack-webhook";
      path = s.notify.slack_webhook_file;
    }
    ++ optional (s.notify.webhooks_file != "") {
      name = "webhooks";
      path = s.notify.webhooks_file;
    };
  inStore = p: lib.hasPrefix "${builtins.storeDir}/" p;

  stateDir = "/var/lib/meshmon";

  # What goes into the file: the settings, plus the role and key from their own options.
  rendered = {
    node = s.node // {
      dashboard = cfg.dashboard;
      key_file = cfg.keyFile;
    };
    inherit (s) collect store notify;
    check = s.check;
    # Unset keys stay out of the file (toml.nix drops nulls too; this keeps it explicit).
    alert = map (lib.filterAttrs (_: v: v != null)) s.alert;
  };
  configText = toml.toTOML rendered;
  configFile = pkgs.writeText "meshmon.toml" configText;
in
{
  options.services.meshmon = {
    enable = mkEnableOption "the meshmon monitoring mesh agent";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./nix/package.nix { }";
      description = "The meshmon package.";
    };

    dashboard = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Dashboard role (`node.dashboard`): keep the fleet's history in `settings.store.path`,
        evaluate alerts and serve the TUI and queries.
      '';
    };

    keyFile = mkOption {
      type = types.nullOr (types.strMatching "/.+");
      default = null;
      example = "/run/keys/meshmon.key";
      description = ''
        Absolute path of the mesh key file on the machine (create it with
        `meshmon keygen --out PATH`; first line seals, further lines are also accepted). Give
        it as a string, never as a Nix path (`./mesh.key` would copy the key into the
        world-readable Nix store); a path in the store is rejected. It may stay `root:root`
        0600: systemd loads it as a credential and bind-mounts it at this same path inside the
        sandbox. Needed unless `settings.node.listen` is a loopback address.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the mesh port (the port of `settings.node.listen`) in the firewall, TCP.";
    };

    extraCapabilities = mkOption {
      type = types.listOf (types.strMatching "CAP_[A-Z_]+");
      default = [ ];
      example = [ "CAP_SYS_ADMIN" ];
      description = ''
        Capabilities granted on top of those the enabled collectors need (`CAP_SYS_RAWIO` for
        SMART, `CAP_DAC_READ_SEARCH` for the Docker walk), e.g. `CAP_SYS_ADMIN` for NVMe
        SMART logs.
      '';
    };

    settings = mkOption {
      type = types.submodule settingsModule;
      default = { };
      description = ''
        meshmon's config, written to the TOML file the agent reads. `node.dashboard` and
        `node.key_file` come from `dashboard` and `keyFile`.
      '';
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      default = configFile;
      defaultText = literalExpression "the generated meshmon.toml in the Nix store";
      description = "The generated config file (for `meshmon check-config --config ...`).";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = !keyInStore;
        message = "services.meshmon.keyFile is in the Nix store (${toString cfg.keyFile}), which every user can read; put the key outside it, e.g. /run/keys/meshmon.key.";
      }
      {
        assertion = loopback || cfg.keyFile != null;
        message = "services.meshmon.settings.node.listen = \"${s.node.listen}\" is not a loopback address, so services.meshmon.keyFile must be set (create a key with `meshmon keygen --out /run/keys/meshmon.key`).";
      }
      {
        assertion = !cfg.dashboard || lib.hasPrefix "${stateDir}/" s.store.path;
        message = "services.meshmon.settings.store.path = \"${s.store.path}\" is not under ${stateDir}, the only directory the service's dynamic user can write; mount another disk at /var/lib/private/meshmon instead.";
      }
      {
        assertion = listenPort > 0 && listenPort < 65536;
        message = "services.meshmon.settings.node.listen = \"${s.node.listen}\": the port must be 1-65535.";
      }
    ]
    ++ map (k: {
      assertion = !inStore s.notify.${k};
      message = "services.meshmon.settings.notify.${k} is in the Nix store (${s.notify.${k}}), which every user can read; put the file outside it, e.g. /run/keys/meshmon-webhooks.";
    }) [ "slack_webhook_file" "webhooks_file" ]
    ++ [
      {
        assertion = s.notify.slack_webhook == "" || s.notify.slack_webhook_file == "";
        message = "services.meshmon.settings.notify.slack_webhook and slack_webhook_file are both set; keep only slack_webhook_file.";
      }
    ];

    warnings = optional (s.notify.slack_webhook != "") "services.meshmon.settings.notify.slack_webhook puts the Slack webhook URL, a secret, into the world-readable Nix store; write it to a file outside the store and set services.meshmon.settings.notify.slack_webhook_file instead.";

    # `meshmon status`, `tui` and `query` find the node by this file when run by hand.
    environment.etc."meshmon/meshmon.toml".source = configFile;
    environment.systemPackages = [ cfg.package ];

    networking.firewall.allowedTCPPorts = optional cfg.openFirewall listenPort;

    systemd.services.meshmon = {
      description = "meshmon monitoring mesh agent";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      path = optional (s.collect.smartctl == "smartctl") pkgs.smartmontools;
      # NixOS links the driver's user-space libraries (libnvidia-ml.so.1) here; NVML is dlopened.
      environment = optionalAttrs gpu { LD_LIBRARY_PATH = "/run/opengl-driver/lib"; };

      serviceConfig = {
        ExecStart = "${lib.getExe cfg.package} agent --config ${configFile}";
        Restart = "always";
        RestartSec = "5s";

        DynamicUser = true;
        StateDirectory = "meshmon";
        StateDirectoryMode = "0700";
        WorkingDirectory = stateDir;
        UMask = "0077";

        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = deviceAllow == [ ];
        PrivateUsers = capabilities == [ ];
        ProtectProc = "invisible";
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
          "AF_NETLINK"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
        ];
        SystemCallErrorNumber = "EPERM";
        # An empty string clears the bounding set; an empty list would write no line at all.
        CapabilityBoundingSet = if capabilities == [ ] then "" else capabilities;
      }
      // optionalAttrs (capabilities != [ ]) { AmbientCapabilities = capabilities; }
      // optionalAttrs (deviceAllow != [ ]) {
        DevicePolicy = "closed";
        DeviceAllow = deviceAllow;
      }
      // optionalAttrs smart { SupplementaryGroups = [ "disk" ]; }
      // optionalAttrs (credentials != [ ]) {
        LoadCredential = map (c: "${c.name}:${c.path}") credentials;
        BindReadOnlyPaths = map (c: "%d/${c.name}:${c.path}") credentials;
      };
    };
  };
}
