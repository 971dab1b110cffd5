# NixOS module for meshmon: `services.meshmon`.
#
# The settings are typed options that mirror meshmon's config file (see README.md,
# "Configuration reference"); they are written to a TOML file in the Nix store, and the service
# runs `meshmon agent --config <that file>` as a dynamic user in a hardened sandbox. The mesh key
# never enters the store: `keyFile` is a path on the machine, handed to the service by systemd
# as a credential; so are the webhook URL files (`settings.notify.slack_webhook_file`,
# `settings.notify.webhooks_file`), every secret file of a notification target
# (`settings.notify.target.*.url_file`, `bot_token_file`, `token_file`, ...) and the web
# dashboard's password hash file (`settings.web.password_file`).
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

  # `[[maintenance]]`: a recurring window in which matching alerts are recorded but not
  # notified, and host-down does not fire for matching hosts. meshmon checks the time zone
  # name against its built-in tz database (`meshmon check-config`).
  maintenanceModule = {
    options = {
      hosts = mkOption {
        type = types.listOf (types.strMatching ".+");
        example = [ "db*" ];
        description = "Globs on host names (`*` any run, `?` one character).";
      };
      rules = opt (types.listOf (types.strMatching ".+")) [ "*" ] "Globs on rule names.";
      days = opt (types.listOf (types.enum [
        "mon"
        "tue"
        "wed"
        "thu"
        "fri"
        "sat"
        "sun"
      ])) [ ] "Days the window starts on (`[ ]`: every day).";
      from = mkOption {
        type = types.strMatching "([01]?[0-9]|2[0-3]):[0-5][0-9]";
        example = "02:00";
        description = "Local start time, `HH:MM`.";
      };
      to = mkOption {
        type = types.strMatching "([01]?[0-9]|2[0-3]):[0-5][0-9]";
        example = "04:00";
        description = "Local end time, `HH:MM`; at or before `from`: the window runs past midnight into the next day.";
      };
      timezone = opt types.str "UTC" "IANA time zone of `from` and `to`, e.g. `\"Europe/Berlin\"` (DST is followed).";
    };
  };

  # A notification target (`[[notify.target]]`). Keys left at "", null or [] stay out of the
  # file; meshmon itself says which keys a kind needs (`meshmon check-config`). Every secret
  # is a file outside the Nix store, handed to the service as a systemd credential.
  targetSecretKeys = [
    "url_file"
    "bot_token_file"
    "token_file"
    "user_key_file"
    "routing_key_file"
    "api_key_file"
    "password_file"
  ];
  targetModule = {
    options = {
      name = mkOption {
        type = types.strMatching "[A-Za-z0-9._-]{1,64}";
        description = "Target name (`meshmon alerts test --target NAME`; letters, digits, `.`, `_`, `-`).";
      };
      kind = mkOption {
        type = types.enum [
          "slack"
          "discord"
          "teams"
          "telegram"
          "ntfy"
          "gotify"
          "pushover"
          "pagerduty"
          "opsgenie"
          "email"
          "webhook"
        ];
        description = "The service.";
      };
      url = opt types.str "" ''
        The webhook or topic URL (slack, discord, teams, webhook, ntfy), the server (gotify) or
        the API base (telegram, pushover, pagerduty, opsgenie: their public API when ""). It
        lands in the Nix store: a URL that carries a token goes in `url_file`.
      '';
      url_file = opt secretFile "" "File holding the URL (a secret webhook URL).";
      bot_token_file = opt secretFile "" "telegram: file holding the bot token.";
      chat_id = opt types.str "" "telegram: the chat id.";
      token_file = opt secretFile "" "gotify: the app token; pushover: the application token; ntfy: an access token (optional).";
      user_key_file = opt secretFile "" "pushover: file holding the user or group key.";
      routing_key_file = opt secretFile "" "pagerduty: file holding the Events API v2 routing key.";
      api_key_file = opt secretFile "" "opsgenie: file holding the API integration key.";
      smtp_host = opt types.str "" "email: the SMTP server.";
      port = opt (types.nullOr types.port) null "email: the SMTP port (null: 587).";
      starttls = opt (types.nullOr types.bool) null "email: require STARTTLS (null: true).";
      ca_file = opt types.str "" "email: PEM file of the CA that signed the SMTP server's certificate, trusted besides the system's (a relay with a private CA; not a secret, may be in the Nix store).";
      username = opt types.str "" "email: SMTP user name (\"\": no authentication).";
      password_file = opt secretFile "" "email: file holding the SMTP password.";
      from = opt types.str "" "email: the sender, e.g. `meshmon <alerts@example.org>`.";
      to = opt (types.listOf types.str) [ ] "email: the recipients.";
      severity = opt (types.enum [
        "info"
        "warning"
        "critical"
      ]) "info" "Minimum severity sent.";
      rules = opt (types.listOf types.str) [ ] "Globs on rule names (empty: every rule).";
      hosts = opt (types.listOf types.str) [ ] "Globs on host names (empty: every host).";
      tags = opt (types.listOf types.str) [ ] "Tags the host must all have.";
      group = opt duration "0s" "Grouping window: one rule's alerts within it go out as one message (\"0s\": none).";
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
        top_processes = opt (types.ints.between 0 100) 10 ''
          The top N process names by CPU and by memory sent every interval (`proc.*{name}`,
          the rest as `name="other"`); `0` turns the process collector off. While it (or
          `processes`) is on the service runs with `ProtectProc=default` instead of
          `invisible`, so that it sees every process; `/proc/PID/io` of other users' processes
          stays unreadable to the dynamic user (no I/O series for their names) unless
          `extraCapabilities` adds `CAP_SYS_PTRACE`.
        '';
        processes = opt (types.listOf types.str) [ ] ''
          Process names whose count is sent as `proc.count{name}` (0 when none runs; the
          `process-missing` alert), e.g. `[ "nginx" "postgres" ]`.
        '';
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
            and switches itself off. The same switch reads AMD GPUs from sysfs (no device node
            needed): set it to `true` on a host with an AMD card.
          '';
        };
        # Disk I/O (issue 16).
        disk_io = opt types.bool true ''
          Block device activity from `/proc/diskstats` (`diskio.*{device}`: bytes/s, IOPS,
          utilisation, await) for whole disks, md and dm devices. Needs no privilege.
        '';
        disk_io_partitions = opt types.bool false "Partitions too in the disk I/O collector.";
        # Containers (issue 16).
        containers = mkOption {
          type = types.bool;
          default = (config.virtualisation.docker.enable or false) || (config.virtualisation.podman.enable or false);
          defaultText = literalExpression "config.virtualisation.docker.enable || config.virtualisation.podman.enable";
          example = true;
          description = ''
            Per-container metrics (`container.*`: CPU, memory, network, block I/O, state, health,
            restarts, image) from cgroups, named by the Docker or Podman API. On by default where
            NixOS runs Docker or Podman. While this is on the service joins the `docker` group
            (with `virtualisation.docker.enable`) and the `podman` group (with
            `virtualisation.podman.enable`; Podman's Docker-compatible socket needs
            `virtualisation.podman.dockerSocket.enable`, then list `/run/docker.sock` in
            `container_sockets`) to read the engine API, runs without `PrivateUsers` (a group is
            not mapped into a private user namespace) and with `ProtectProc=default` instead of
            `invisible` (the containers' `/proc/PID/cgroup` and `/proc/PID/net/dev` are read); no
            capability is added. Where no engine and no container cgroup is found the collector
            logs one line and keeps looking every minute.
          '';
        };
        container_sockets = opt (types.listOf types.str) [
          "/var/run/docker.sock"
          "/run/podman/podman.sock"
        ] "Docker-compatible engine API sockets the container collector tries, in order.";
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
        target = opt (types.listOf (types.submodule targetModule)) [ ] "Notification targets of every kind (`[[notify.target]]`).";
      };

      maintenance = opt (types.listOf (types.submodule maintenanceModule)) [ ] ''
        Recurring maintenance windows (`[[maintenance]]`), kept by dashboard nodes: matching
        alerts are recorded but not notified, and host-down does not fire for matching hosts;
        an alert still firing when a window ends is notified once. One-off windows:
        `meshmon alerts maintenance --host GLOB --for 2h`.
      '';
      web = {
        listen = opt (types.either (types.enum [ "" ]) ipPort) "" ''
          `ip:port` of the web dashboard of a dashboard node (`""`: off). A non-loopback
          address needs `password_file`; for TLS, listen on 127.0.0.1 behind a reverse proxy
          (README, "Web dashboard").
        '';
        password_file = opt secretFile "" ''
          File on the machine whose first line is an argon2 hash made by
          `meshmon web-password` (`""`: no login, so no acknowledging or silencing from the
          web). Handed to the service like `notify.slack_webhook_file`.
        '';
        public_status = opt types.bool false "Serve the public status page `/status` (checks and hosts up/down only).";
        title = opt types.str "meshmon" "Title shown in the pages.";
      };
    };
  };

  s = cfg.settings;
  smart = s.collect.smartctl != "";
  docker = s.collect.docker_dir != "";
  gpu = s.collect.gpu;
  containers = s.collect.containers;
  containerGroups =
    optional (containers && (config.virtualisation.docker.enable or false)) "docker"
    ++ optional (containers && (config.virtualisation.podman.enable or false)) "podman";
  # The process collector must see every process: ProtectProc=invisible would hide the other
  # users' ones.
  procs = s.collect.top_processes > 0 || s.collect.processes != [ ];
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
    }
    ++ targetCredentials
    ++ optional (s.web.password_file != "") {
      name = "web-password";
      path = s.web.password_file;
    };
  # Each target's secret files: credential `notify-<name>-<key>`.
  targetSecrets = builtins.concatMap (
    t:
    map (k: {
      target = t.name;
      key = k;
      path = t.${k};
    }) (filter (k: t.${k} != "") targetSecretKeys)
  ) s.notify.target;
  targetCredentials = map (x: {
    name = "notify-${x.target}-${x.key}";
    inherit (x) path;
  }) targetSecrets;
  inherit (builtins) filter;
  webLoopback = s.web.listen == "" || lib.hasPrefix "127." s.web.listen || lib.hasPrefix "[::1]:" s.web.listen;
  inStore = p: lib.hasPrefix "${builtins.storeDir}/" p;

  stateDir = "/var/lib/meshmon";

  # What goes into the file: the settings, plus the role and key from their own options.
  rendered = {
    node = s.node // {
      dashboard = cfg.dashboard;
      key_file = cfg.keyFile;
    };
    inherit (s) collect store web;
    # `target` only when there are targets: the file stays as it was without them.
    notify =
      removeAttrs s.notify [ "target" ]
      // optionalAttrs (s.notify.target != [ ]) {
        target = map (lib.filterAttrs (_: v: v != "" && v != null && v != [ ])) s.notify.target;
      };
    check = s.check;
    # Unset keys stay out of the file (toml.nix drops nulls too; this keeps it explicit).
    alert = map (lib.filterAttrs (_: v: v != null)) s.alert;
  }
  // lib.optionalAttrs (s.maintenance != [ ]) { inherit (s) maintenance; };
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
    ++ map (x: {
      assertion = !inStore x.path;
      message = "services.meshmon.settings.notify.target '${x.target}': ${x.key} is in the Nix store (${x.path}), which every user can read; put the file outside it, e.g. /run/keys/meshmon-${x.target}.";
    }) targetSecrets
    ++ [
      {
        assertion = builtins.all (
          t: builtins.length (filter (u: u.name == t.name) s.notify.target) == 1
        ) s.notify.target;
        message = "services.meshmon.settings.notify.target: two targets have the same name.";
      }
      {
        assertion = !inStore s.web.password_file;
        message = "services.meshmon.settings.web.password_file is in the Nix store (${s.web.password_file}); put the file outside it, e.g. /run/keys/meshmon-web.pass.";
      }
      {
        assertion = webLoopback || s.web.password_file != "";
        message = "services.meshmon.settings.web.listen = \"${s.web.listen}\" is not a loopback address, so services.meshmon.settings.web.password_file must be set (make one with `meshmon web-password > /run/keys/meshmon-web.pass`).";
      }
      {
        assertion = s.web.listen == "" || cfg.dashboard;
        message = "services.meshmon.settings.web.listen is set but services.meshmon.dashboard is false; the web dashboard runs on dashboard nodes.";
      }
    ]
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
        PrivateUsers = capabilities == [ ] && !containers;
        ProtectProc = if containers || procs then "default" else "invisible";
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
      // optionalAttrs (smart || containerGroups != [ ]) {
        SupplementaryGroups = optional smart "disk" ++ containerGroups;
      }
      // optionalAttrs (credentials != [ ]) {
        LoadCredential = map (c: "${c.name}:${c.path}") credentials;
        BindReadOnlyPaths = map (c: "%d/${c.name}:${c.path}") credentials;
      };
    };
  };
}
