# Checks of nix/module.nix, nix/package.nix and flake.nix against the stand-ins in this folder
# (lib.nix: nixpkgs' lib and module system; pkgs.nix; nixos.nix: the NixOS options the module
# touches and nixpkgs' way of writing a unit file). Run by scripts/check_nix.sh:
#
#   nix-instantiate --eval --strict --json nix/tests/test.nix --argstr keyFile /path/mesh.key \
#     --argstr slackFile /path/slack --argstr webhooksFile /path/webhooks
#
# Result: { results = [ { name, ok, detail } ]; configs = { NAME = "generated TOML"; };
# units = { NAME = "rendered meshmon.service"; }; }. The script validates `configs` with
# `meshmon check-config` (keyFile, slackFile and webhooksFile are the paths they name: real files
# there) and `units` with
# `systemd-analyze verify`.
{
  keyFile ? "/run/keys/meshmon.key",
  slackFile ? "/run/keys/meshmon-slack",
  webhooksFile ? "/run/keys/meshmon-webhooks",
}:
let
  lib = import ./lib.nix;
  pkgs = import ./pkgs.nix { inherit lib; };
  nixos = import ./nixos.nix { inherit lib pkgs; };
  inherit (builtins)
    all
    any
    deepSeq
    elem
    filter
    isFloat
    isString
    split
    toJSON
    tryEval
    ;

  storeDir = builtins.storeDir;

  evalWith =
    moduleUnderTest: cfg:
    let
      e = lib.evalModules {
        modules = [
          nixos.module
          moduleUnderTest
          cfg
        ];
        specialArgs = { inherit pkgs; };
      };
      c = e.config;
      svc = c.systemd.services.meshmon;
    in
    rec {
      config = c;
      failed = map (a: a.message) (filter (a: !a.assertion) c.assertions);
      warnings = c.warnings;
      unit = nixos.renderUnit svc;
      lines = filter (l: isString l && l != "") (split "\n" unit);
      toml = c.services.meshmon.configFile.text;
      parsed = builtins.fromTOML toml;
      ports = c.networking.firewall.allowedTCPPorts;
      execStart = svc.serviceConfig.ExecStart;
    };
  sys = evalWith ../module.nix;

  # A test is { name, ok, detail }; an evaluation error (a throw) inside one makes it fail.
  test =
    name: f:
    let
      r = tryEval (
        let
          v = f null;
        in
        deepSeq v v
      );
    in
    {
      inherit name;
      ok = r.success && r.value.ok;
      detail = if r.success then r.value.detail else "evaluation failed";
    };
  eq = actual: expected: {
    ok = actual == expected;
    detail = "expected ${toJSON expected}, got ${toJSON actual}";
  };
  ok = cond: detail: { inherit detail; ok = cond; };
  unitHas =
    s: wanted:
    ok (all (l: elem l s.lines) wanted) "wanted lines ${toJSON (filter (l: !(elem l s.lines)) wanted)} in:\n${s.unit}";
  unitLacks =
    s: prefixes:
    let
      found = filter (l: any (p: lib.hasPrefix p l) prefixes) s.lines;
    in
    ok (found == [ ]) "unexpected lines ${toJSON found} in:\n${s.unit}";
  both = a: b: {
    ok = a.ok && b.ok;
    detail = if a.ok then b.detail else a.detail;
  };
  # The configuration must not evaluate: a type error or undeclared option (a throw).
  rejects =
    cfg:
    let
      s = sys cfg;
      r = tryEval (deepSeq [
        s.toml
        s.unit
        s.failed
      ] true);
    in
    ok (!r.success) "evaluated, but should have been rejected";
  failsAssertion =
    cfg: needle:
    let
      s = sys cfg;
    in
    ok (any (m: lib.hasPrefix needle m || builtins.match ".*${lib.escapeRegex needle}.*" m != null) s.failed
    ) "expected a failed assertion mentioning '${needle}', got ${toJSON s.failed}";

  hardening = [
    "Restart=always"
    "DynamicUser=true"
    "StateDirectory=meshmon"
    "StateDirectoryMode=0700"
    "UMask=0077"
    "NoNewPrivileges=true"
    "ProtectSystem=strict"
    "ProtectHome=true"
    "PrivateTmp=true"
    "ProtectKernelTunables=true"
    "ProtectKernelModules=true"
    "ProtectKernelLogs=true"
    "ProtectControlGroups=true"
    "ProtectClock=true"
    "ProtectHostname=true"
    "RestrictAddressFamilies=AF_UNIX"
    "RestrictAddressFamilies=AF_INET"
    "RestrictAddressFamilies=AF_INET6"
    "RestrictAddressFamilies=AF_NETLINK"
    "RestrictNamespaces=true"
    "RestrictRealtime=true"
    "RestrictSUIDSGID=true"
    "LockPersonality=true"
    "MemoryDenyWriteExecute=true"
    "RemoveIPC=true"
    "SystemCallArchitectures=native"
    "SystemCallFilter=@system-service"
    "SystemCallFilter=~@privileged"
  ];

  # ---- configurations ----------------------------------------------------------------------
  minimal = {
    services.meshmon.enable = true;
  };
  sMin = sys minimal;

  meshNode = {
    services.meshmon = {
      enable = true;
      inherit keyFile;
      openFirewall = true;
      dashboard = true;
      settings = {
        node = {
          name = "ops01";
          listen = "0.0.0.0:6130";
          neighbours = [
            "10.0.0.1:6130"
            "srv03.example.org:6131"
          ];
          tags = [
            "ops"
            "prod"
          ];
        };
        collect.systemd_units = [ "nginx.service" ];
        check = [
          {
            name = "gitea";
            url = "https://git.example.org/healthz";
            body_contains = "ok \"quoted\"";
          }
          {
            name = "web";
            url = "http://127.0.0.1:8080/";
            expect_status = 204;
            interval = "1m30s";
          }
        ];
        store.path = "/var/lib/meshmon/fleet.db";
        alert = [
          {
            name = "cpu-hot";
            metric = "cpu.usage_pct";
            op = ">";
            threshold = 90;
            for = "30s";
          }
          {
            name = "root-disk-full";
            metric = ''disk.used_pct{mount="/"}'';
            op = ">=";
            threshold = 0.5;
            severity = "critical";
            repeat = "0s";
          }
          # Overrides of built-ins: only the keys given reach the file.
          {
            name = "disk-full";
            threshold = 95;
          }
          {
            name = "smart-worn";
            enabled = false;
          }
          {
            name = "media-errors-prod";
            metric = "smart.media_errors";
            op = "increase";
            threshold = 0;
            for = "12h";
            tags = [ "prod" ];
          }
          {
            name = "mem-high";
            metric = "mem.used_pct";
            hosts = "db*";
            op = ">=";
            threshold = 90;
            clear_threshold = 80;
            severity = "info";
          }
        ];
        notify = {
          webhooks = [ "https://hooks.example.org/meshmon" ];
          give_up_after = "2h";
        };
        maintenance = [ berlinWindow ];
      };
    };
    virtualisation.docker.enable = true;
  };
  sMesh = sys meshNode;
  # A recurring window past midnight in a zone with DST (rules left to the default).
  berlinWindow = {
    hosts = [ "db*" ];
    days = [
      "sat"
      "sun"
    ];
    from = "22:00";
    to = "02:00";
    timezone = "Europe/Berlin";
  };

  withSmart = {
    services.meshmon = {
      enable = true;
      settings.collect.smartctl = "smartctl";
    };
  };
  sSmart = sys withSmart;

  # A machine with the NVIDIA driver: GPU on by default.
  withNvidia = {
    services.meshmon.enable = true;
    hardware.nvidia.enabled = true;
  };
  sGpu = sys withNvidia;
  # GPU and SMART together: both device sets, one DevicePolicy.
  sGpuSmart = sys {
    imports = [
      withNvidia
      withSmart
    ];
  };
  gpuDevices = [
    "DeviceAllow=char-nvidia-frontend rw"
    "DeviceAllow=char-nvidia rw"
    "DeviceAllow=char-nvidia-caps rw"
  ];
  ldPath = ''Environment="LD_LIBRARY_PATH=/run/opengl-driver/lib"'';

  public = {
    services.meshmon = {
      enable = true;
      inherit keyFile;
      settings.node.listen = "0.0.0.0:6130";
    };
  };
  edit = f: {
    imports = [ public ];
    services.meshmon = f;
  };

  # Webhook URLs from files outside the store, on a node with a key: three credentials.
  withFiles = {
    imports = [ public ];
    services.meshmon.settings.notify = {
      slack_webhook_file = slackFile;
      webhooks_file = webhooksFile;
      webhooks = [ "https://hooks.example.org/public" ];
    };
  };
  sFiles = sys withFiles;
  # Notification targets of every kind, their secrets in files outside the store (the
  # script's real files, so that `meshmon check-config` reads them).
  withTargets = {
    imports = [ public ];
    services.meshmon.settings.notify.target = [
      {
        name = "ops-discord";
        kind = "discord";
        url_file = slackFile;
        group = "30s";
        rules = [ "host-down" ];
      }
      {
        name = "oncall";
        kind = "pagerduty";
        routing_key_file = webhooksFile;
        severity = "critical";
      }
      {
        name = "phone";
        kind = "telegram";
        bot_token_file = slackFile;
        chat_id = "-100123";
      }
      {
        name = "mail";
        kind = "email";
        smtp_host = "smtp.example.org";
        username = "meshmon";
        password_file = webhooksFile;
        from = "meshmon <alerts@example.org>";
        to = [ "ops@example.org" ];
      }
      {
        name = "chat";
        kind = "slack";
        url_file = slackFile;
      }
      {
        name = "office";
        kind = "teams";
        url_file = slackFile;
      }
      {
        name = "topic";
        kind = "ntfy";
        url = "https://ntfy.example.org/meshmon";
        token_file = webhooksFile;
      }
      {
        name = "push";
        kind = "gotify";
        url = "https://gotify.example.org";
        token_file = webhooksFile;
      }
      {
        name = "po";
        kind = "pushover";
        token_file = slackFile;
        user_key_file = webhooksFile;
      }
      {
        name = "genie";
        kind = "opsgenie";
        api_key_file = webhooksFile;
      }
      {
        name = "hook";
        kind = "webhook";
        url_file = slackFile;
      }
    ];
  };
  sTargets = sys withTargets;
  inlineSlack = {
    services.meshmon = {
      enable = true;
      settings.notify.slack_webhook = "https://hooks.slack.com/services/T0/B0/X";
    };
  };

  # ---- the package and the flake -----------------------------------------------------------
  cargo = lib.importTOML ../../Cargo.toml;
  agentCargo = lib.importTOML ../../agent/Cargo.toml;
  pkg = pkgs.callPackage ../package.nix { };
  pkgPlain = pkgs.callPackage ../package.nix { plain = true; };
  flake = import ../../flake.nix;
  flakeOut = flake.outputs {
    self = flakeOut;
    nixpkgs = {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (_: pkgs);
    };
  };
  sFlake = evalWith flakeOut.nixosModules.default minimal;

  results = [
    # A minimal enabled service: loopback node, no collectors needing privileges.
    (test "minimal: no failed assertions" (_: eq sMin.failed [ ]))
    (test "minimal: ExecStart runs the package's meshmon agent on the generated file" (
      _:
      eq sMin.execStart "${pkg}/bin/meshmon agent --config ${sMin.config.services.meshmon.configFile}"
    ))
    (test "minimal: unit is hardened (NoNewPrivileges, ProtectSystem=strict, ...)" (
      _: unitHas sMin (hardening ++ [ "ExecStart=${sMin.execStart}" "PrivateDevices=true" "PrivateUsers=true" ])
    ))
    (test "minimal: the process collector is on, so other users' processes are visible" (
      _: both (unitHas sMin [ "ProtectProc=default" ]) (unitLacks sMin [ "ProtectProc=invisible" ])
    ))
    (test "no process collector: ProtectProc=invisible" (
      _:
      unitHas (sys {
        services.meshmon.enable = true;
        services.meshmon.settings.collect.top_processes = 0;
      }) [ "ProtectProc=invisible" ]
    ))
    (test "minimal: empty capability bounding set, no ambient capabilities" (
      _: both (unitHas sMin [ "CapabilityBoundingSet=" ]) (unitLacks sMin [ "AmbientCapabilities=" "CapabilityBoundingSet=C" ])
    ))
    (test "minimal: no device access, no key credential" (
      _: unitLacks sMin [ "DeviceAllow=" "SupplementaryGroups=" "LoadCredential=" "BindReadOnlyPaths=" "ReadWritePaths=" ]
    ))
    (test "minimal: wanted by multi-user.target, after network-online.target" (
      _: unitHas sMin [ "WantedBy=multi-user.target" "After=network-online.target" "Wants=network-online.target" ]
    ))
    (test "minimal: no firewall port" (_: eq sMin.ports [ ]))
    (test "minimal: TOML is meshmon's defaults, privileged collectors off" (
      _:
      eq sMin.parsed {
        node = {
          listen = "127.0.0.1:6130";
          neighbours = [ ];
          dashboard = false;
          max_hops = 8;
          tags = [ ];
        };
        collect = {
          interval = "1s";
          docker_dir = "";
          docker_interval = "5m";
          smartctl = "";
          smart_interval = "10m";
          textfile_dir = "";
          systemd_units = [ ];
          cgroup_root = "/sys/fs/cgroup";
          gpu = false;
          disk_io = true;
          disk_io_partitions = false;
          containers = false;
          container_sockets = [
            "/var/run/docker.sock"
            "/run/podman/podman.sock"
          ];
          top_processes = 10;
          processes = [ ];
        };
        check = [ ];
        store = {
          path = "/var/lib/meshmon/meshmon.db";
          retention = "7d";
        };
        alert = [ ];
        notify = {
          slack_webhook = "";
          slack_webhook_file = "";
          webhooks = [ ];
          webhooks_file = "";
          give_up_after = "24h";
        };
        web = {
          listen = "";
          password_file = "";
          public_status = false;
          title = "meshmon";
        };
      }
    ))
    (test "minimal: /etc/meshmon/meshmon.toml is the generated file" (
      _:
      eq (toString sMin.config.environment.etc."meshmon/meshmon.toml".source) (
        toString sMin.config.services.meshmon.configFile
      )
    ))
    (test "disabled: no service, no port, no /etc file" (
      _:
      let
        s = sys { services.meshmon.settings.node.name = "x"; };
      in
      eq [ s.config.systemd.services s.ports s.config.environment.etc ] [ { } [ ] { } ]
    ))

    # A public dashboard node with a key, checks, alerts and Docker.
    (test "mesh: no failed assertions" (_: eq sMesh.failed [ ]))
    (test "mesh: openFirewall opens the listen port" (_: eq sMesh.ports [ 6130 ]))
    (test "mesh: TOML node section (key_file from keyFile, dashboard from dashboard)" (
      _:
      eq sMesh.parsed.node {
        name = "ops01";
        listen = "0.0.0.0:6130";
        neighbours = [
          "10.0.0.1:6130"
          "srv03.example.org:6131"
        ];
        dashboard = true;
        key_file = keyFile;
        max_hops = 8;
        tags = [
          "ops"
          "prod"
        ];
      }
    ))
    (test "mesh: the key is loaded as a credential and bound at keyFile" (
      _:
      unitHas sMesh [
        "LoadCredential=mesh.key:${keyFile}"
        "BindReadOnlyPaths=%d/mesh.key:${keyFile}"
      ]
    ))
    (test "mesh: Docker enabled -> docker_dir default and CAP_DAC_READ_SEARCH only" (
      _:
      both (eq sMesh.parsed.collect.docker_dir "/var/lib/docker") (
        both
          (unitHas sMesh [
            "AmbientCapabilities=CAP_DAC_READ_SEARCH"
            "CapabilityBoundingSet=CAP_DAC_READ_SEARCH"
            "PrivateUsers=false"
            "PrivateDevices=true"
          ])
          (unitLacks sMesh [
            "AmbientCapabilities=CAP_SYS_RAWIO"
            "CapabilityBoundingSet=CAP_SYS_RAWIO"
            "DeviceAllow="
          ])
      )
    ))
    (test "mesh: the store is written in the StateDirectory, no other writable path" (
      _: both (eq sMesh.parsed.store.path "/var/lib/meshmon/fleet.db") (unitLacks sMesh [ "ReadWritePaths=" ])
    ))
    (test "mesh: [[check]] entries with defaults, body_contains only where set" (
      _:
      eq sMesh.parsed.check [
        {
          name = "gitea";
          url = "https://git.example.org/healthz";
          interval = "30s";
          timeout = "5s";
          expect_status = 200;
          body_contains = "ok \"quoted\"";
          insecure = false;
        }
        {
          name = "web";
          url = "http://127.0.0.1:8080/";
          interval = "1m30s";
          timeout = "5s";
          expect_status = 204;
          insecure = false;
        }
      ]
    ))
    (test "mesh: [[alert]] entries hold only the keys that were set" (
      _:
      eq [ (builtins.elemAt sMesh.parsed.alert 0) (builtins.elemAt sMesh.parsed.alert 1) ] [
        {
          name = "cpu-hot";
          metric = "cpu.usage_pct";
          op = ">";
          threshold = 90.0;
          for = "30s";
        }
        {
          name = "root-disk-full";
          metric = ''disk.used_pct{mount="/"}'';
          op = ">=";
          threshold = 0.5;
          severity = "critical";
          repeat = "0s";
        }
      ]
    ))
    (test "mesh: an override of a built-in renders only the keys it gives (no for, severity, repeat)" (
      _:
      both
        (eq (builtins.elemAt sMesh.parsed.alert 2) {
          name = "disk-full";
          threshold = 95.0;
        })
        (
          ok (builtins.match ".*[[][[]alert]]\nname = \"disk-full\"\nthreshold = 95[.]0\n\n[[][[]alert]].*" sMesh.toml != null) sMesh.toml
        )
    ))
    (test "mesh: enabled = false switches a built-in off, nothing else written" (
      _:
      eq (builtins.elemAt sMesh.parsed.alert 3) {
        name = "smart-worn";
        enabled = false;
      }
    ))
    (test "mesh: op = increase with tags" (
      _:
      eq (builtins.elemAt sMesh.parsed.alert 4) {
        name = "media-errors-prod";
        metric = "smart.media_errors";
        op = "increase";
        threshold = 0.0;
        for = "12h";
        tags = [ "prod" ];
      }
    ))
    (test "mesh: clear_threshold and hosts, thresholds written as floats" (
      _:
      both
        (eq (builtins.elemAt sMesh.parsed.alert 5) {
          name = "mem-high";
          metric = "mem.used_pct";
          hosts = "db*";
          op = ">=";
          threshold = 90.0;
          clear_threshold = 80.0;
          severity = "info";
        })
        (ok (builtins.match ".*clear_threshold = 80[.]0\n.*" sMesh.toml != null) sMesh.toml)
    ))
    (test "mesh: an integer threshold is written as a TOML float" (
      _:
      ok (
        all isFloat (map (a: a.threshold) (filter (a: a ? threshold) sMesh.parsed.alert))
        && builtins.match ".*threshold = 90[.]0\n.*" sMesh.toml != null
      ) sMesh.toml
    ))
    (test "mesh: notify.give_up_after" (
      _:
      eq sMesh.parsed.notify {
        slack_webhook = "";
        slack_webhook_file = "";
        webhooks = [ "https://hooks.example.org/meshmon" ];
        webhooks_file = "";
        give_up_after = "2h";
      }
    ))
    (test "mesh: [[maintenance]] with its defaults filled in" (
      _:
      eq sMesh.parsed.maintenance [ (berlinWindow // { rules = [ "*" ]; }) ]
    ))
    (test "minimal: no [[maintenance]] in the TOML" (
      _: ok (!(sMin.parsed ? maintenance)) sMin.toml
    ))
    (test "mesh: no _module bookkeeping leaks into the TOML" (
      _: ok (builtins.match ".*_module.*" sMesh.toml == null) sMesh.toml
    ))

    # SMART.
    (test "smart: CAP_SYS_RAWIO, disk devices and group, smartmontools on PATH" (
      _:
      both
        (unitHas sSmart [
          "AmbientCapabilities=CAP_SYS_RAWIO"
          "CapabilityBoundingSet=CAP_SYS_RAWIO"
          "PrivateDevices=false"
          "PrivateUsers=false"
          "DevicePolicy=closed"
          "DeviceAllow=block-sd rw"
          "DeviceAllow=block-blkext rw"
          "DeviceAllow=char-nvme rw"
          "SupplementaryGroups=disk"
        ])
        (
          both (unitLacks sSmart [ "AmbientCapabilities=CAP_DAC_READ_SEARCH" ]) (
            ok (any (l: builtins.match "Environment=\"PATH=.*${pkgs.smartmontools}/bin.*" l != null) sSmart.lines) sSmart.unit
          )
        )
    ))
    (test "smart: services.smartd.enable turns SMART on by default" (
      _:
      eq
        (sys {
          services.meshmon.enable = true;
          services.smartd.enable = true;
        }).parsed.collect.smartctl
        "smartctl"
    ))
    (test "smart: a smartctl path adds no package to PATH, keeps the capability" (
      _:
      let
        s = sys {
          services.meshmon.enable = true;
          services.meshmon.settings.collect.smartctl = "/run/current-system/sw/bin/smartctl";
        };
      in
      both (unitHas s [ "AmbientCapabilities=CAP_SYS_RAWIO" ]) (
        ok (!(any (l: builtins.match ".*smartmontools.*" l != null) s.lines)) s.unit
      )
    ))
    (test "smart: extraCapabilities are added to both sets" (
      _:
      unitHas
        (sys {
          imports = [ withSmart ];
          services.meshmon.extraCapabilities = [ "CAP_SYS_ADMIN" ];
        })
        [
          "AmbientCapabilities=CAP_SYS_RAWIO"
          "AmbientCapabilities=CAP_SYS_ADMIN"
          "CapabilityBoundingSet=CAP_SYS_ADMIN"
        ]
    ))
    # GPU (NVML).
    (test "gpu: off without the NVIDIA driver; PrivateDevices, no LD_LIBRARY_PATH, no nvidia devices" (
      _:
      both (eq sMin.parsed.collect.gpu false) (
        both (unitHas sMin [ "PrivateDevices=true" ]) (unitLacks sMin [ "Environment=\"LD_LIBRARY_PATH" "DevicePolicy=" "DeviceAllow=" ])
      )
    ))
    (test "gpu: hardware.nvidia.enabled turns it on by default, rendered as gpu = true" (
      _: both (eq sGpu.parsed.collect.gpu true) (ok (builtins.match ".*\ngpu = true\n.*" sGpu.toml != null) sGpu.toml)
    ))
    (test "gpu: NVIDIA devices instead of PrivateDevices, NVML from /run/opengl-driver/lib" (
      _:
      unitHas sGpu (
        hardening
        ++ gpuDevices
        ++ [
          ldPath
          "PrivateDevices=false"
          "DevicePolicy=closed"
        ]
      )
    ))
    (test "gpu: no capabilities, PrivateUsers kept, no disk devices or group" (
      _:
      both (unitHas sGpu [ "CapabilityBoundingSet=" "PrivateUsers=true" ]) (
        unitLacks sGpu [
          "AmbientCapabilities="
          "CapabilityBoundingSet=C"
          "DeviceAllow=block-"
          "DeviceAllow=char-nvme"
          "DeviceAllow=char-nvidia-uvm"
          "SupplementaryGroups="
        ]
      )
    ))
    (test "gpu: settings.collect.gpu = true works without hardware.nvidia (driver installed otherwise)" (
      _:
      let
        s = sys {
          services.meshmon.enable = true;
          services.meshmon.settings.collect.gpu = true;
        };
      in
      both (eq s.parsed.collect.gpu true) (unitHas s (gpuDevices ++ [ ldPath "PrivateDevices=false" ]))
    ))
    (test "gpu: settings.collect.gpu = false on an NVIDIA machine keeps PrivateDevices" (
      _:
      let
        s = sys {
          imports = [ withNvidia ];
          services.meshmon.settings.collect.gpu = false;
        };
      in
      both (eq s.parsed.collect.gpu false) (
        both (unitHas s [ "PrivateDevices=true" ]) (unitLacks s [ "DeviceAllow=" "DevicePolicy=" "Environment=\"LD_LIBRARY_PATH" ])
      )
    ))
    (test "gpu and smart: both device sets, one DevicePolicy, SMART's capability and group" (
      _:
      both
        (unitHas sGpuSmart (
          gpuDevices
          ++ [
            ldPath
            "PrivateDevices=false"
            "DevicePolicy=closed"
            "DeviceAllow=block-sd rw"
            "DeviceAllow=block-blkext rw"
            "DeviceAllow=char-nvme rw"
            "SupplementaryGroups=disk"
            "AmbientCapabilities=CAP_SYS_RAWIO"
            "PrivateUsers=false"
          ]
        ))
        (ok (builtins.length (filter (lib.hasPrefix "DevicePolicy=") sGpuSmart.lines) == 1) sGpuSmart.unit)
    ))
    (test "smart without gpu: disk devices only, no LD_LIBRARY_PATH" (
      _: unitLacks sSmart [ "DeviceAllow=char-nvidia" "Environment=\"LD_LIBRARY_PATH" ]
    ))

    # Containers.
    # (ProtectProc: the process collector, on by default, already needs `default`; with it off,
    # containers alone decide.)
    (test "containers: off without Docker or Podman; no docker group, PrivateUsers kept" (
      _:
      both (eq sMin.parsed.collect.containers false) (
        unitLacks sMin [ "SupplementaryGroups=" "PrivateUsers=false" ]
      )
    ))
    (test "containers: Docker enabled turns them on: docker group, ProtectProc=default, no PrivateUsers" (
      _:
      both (eq sMesh.parsed.collect.containers true) (
        both
          (unitHas sMesh [ "SupplementaryGroups=docker" "ProtectProc=default" "PrivateUsers=false" ])
          (unitLacks sMesh [ "ProtectProc=invisible" ])
      )
    ))
    (test "containers: settings.collect.containers = false on a Docker host keeps the sandbox" (
      _:
      let
        s = sys {
          imports = [ meshNode ];
          services.meshmon.settings.collect.containers = false;
          services.meshmon.settings.collect.top_processes = 0;
        };
      in
      both (unitHas s [ "ProtectProc=invisible" ]) (unitLacks s [ "SupplementaryGroups=" ])
    ))

    # Webhook URL files.
    (test "minimal: no warnings" (_: eq sMin.warnings [ ]))
    (test "notify files: no failed assertions, no warnings" (_: eq [ sFiles.failed sFiles.warnings ] [ [ ] [ ] ]))
    (test "notify files: the TOML names the files, holds no secret URL" (
      _:
      eq sFiles.parsed.notify {
        slack_webhook = "";
        slack_webhook_file = slackFile;
        webhooks = [ "https://hooks.example.org/public" ];
        webhooks_file = webhooksFile;
        give_up_after = "24h";
      }
    ))
    (test "notify files: loaded as credentials with the key and bound at their paths" (
      _:
      unitHas sFiles [
        "LoadCredential=mesh.key:${keyFile}"
        "LoadCredential=slack-webhook:${slackFile}"
        "LoadCredential=webhooks:${webhooksFile}"
        "BindReadOnlyPaths=%d/mesh.key:${keyFile}"
        "BindReadOnlyPaths=%d/slack-webhook:${slackFile}"
        "BindReadOnlyPaths=%d/webhooks:${webhooksFile}"
      ]
    ))
    (test "notify files: a webhooks file alone is a credential without a key" (
      _:
      let
        s = sys {
          services.meshmon.enable = true;
          services.meshmon.settings.notify.webhooks_file = webhooksFile;
        };
      in
      both
        (unitHas s [
          "LoadCredential=webhooks:${webhooksFile}"
          "BindReadOnlyPaths=%d/webhooks:${webhooksFile}"
        ])
        (unitLacks s [ "LoadCredential=mesh.key" "LoadCredential=slack-webhook" ])
    ))
    (test "slack_webhook in the settings warns, pointing to slack_webhook_file" (
      _:
      let
        w = (sys inlineSlack).warnings;
      in
      ok (
        builtins.length w == 1 && builtins.match ".*Nix store.*slack_webhook_file.*" (builtins.head w) != null
      ) (toJSON w)
    ))
    (test "slack_webhook together with slack_webhook_file fails an assertion" (
      _:
      failsAssertion {
        imports = [ withFiles ];
        services.meshmon.settings.notify.slack_webhook = "https://hooks.slack.com/services/T0/B0/X";
      } "keep only slack_webhook_file"
    ))
    (test "a webhook file in the Nix store fails an assertion" (
      _:
      both
        (failsAssertion (edit { settings.notify.slack_webhook_file = "${storeDir}/0000-slack"; }) "notify.slack_webhook_file is in the Nix store")
        (failsAssertion (edit { settings.notify.webhooks_file = "${storeDir}/0000-hooks"; }) "notify.webhooks_file is in the Nix store")
    ))
    (test "rejects a webhook file given as a Nix path or a relative path" (
      _:
      both (rejects (edit { settings.notify.slack_webhook_file = ./test.nix; })) (
        rejects (edit { settings.notify.webhooks_file = "keys/webhooks"; })
      )
    ))

    (test "notify targets: no failed assertions, no warnings" (
      _: eq [ sTargets.failed sTargets.warnings ] [ [ ] [ ] ]
    ))
    (test "notify targets: the TOML lists them with only the keys given, no secret" (
      _:
      both (eq (builtins.head sTargets.parsed.notify.target) {
        name = "ops-discord";
        kind = "discord";
        url_file = slackFile;
        group = "30s";
        rules = [ "host-down" ];
        severity = "info";
      }) (eq (map (t: t.name) sTargets.parsed.notify.target) [ "ops-discord" "oncall" "phone" "mail" "chat" "office" "topic" "push" "po" "genie" "hook" ])
    ))
    (test "notify targets: every secret file is a credential bound at its path" (
      _:
      unitHas sTargets [
        "LoadCredential=notify-ops-discord-url_file:${slackFile}"
        "LoadCredential=notify-oncall-routing_key_file:${webhooksFile}"
        "LoadCredential=notify-phone-bot_token_file:${slackFile}"
        "LoadCredential=notify-mail-password_file:${webhooksFile}"
        "LoadCredential=notify-topic-token_file:${webhooksFile}"
        "LoadCredential=notify-po-user_key_file:${webhooksFile}"
        "LoadCredential=notify-genie-api_key_file:${webhooksFile}"
        "LoadCredential=notify-hook-url_file:${slackFile}"
        "BindReadOnlyPaths=%d/notify-ops-discord-url_file:${slackFile}"
        "BindReadOnlyPaths=%d/notify-mail-password_file:${webhooksFile}"
      ]
    ))
    (test "notify targets: without any, the TOML has no target key" (
      _: ok (!(sMin.parsed.notify ? target)) sMin.toml
    ))
    (test "notify targets: a secret file in the Nix store fails an assertion" (
      _:
      failsAssertion (edit {
        settings.notify.target = [
          {
            name = "x";
            kind = "ntfy";
            url_file = "${storeDir}/0000-ntfy";
          }
        ];
      }) "target 'x': url_file is in the Nix store"
    ))
    (test "notify targets: two of one name fail an assertion" (
      _:
      failsAssertion (edit {
        settings.notify.target = [
          {
            name = "x";
            kind = "slack";
            url_file = slackFile;
          }
          {
            name = "x";
            kind = "webhook";
            url_file = slackFile;
          }
        ];
      }) "same name"
    ))
    (test "notify targets: an unknown kind or a secret given as a Nix path is refused" (
      _:
      both
        (rejects (edit { settings.notify.target = [ { name = "x"; kind = "carrier-pigeon"; } ]; }))
        (rejects (edit { settings.notify.target = [ { name = "x"; kind = "slack"; url_file = ./test.nix; } ]; }))
    ))

    (test "users can still override the unit (mkForce)" (
      _:
      unitHas (sys {
        imports = [ minimal ];
        systemd.services.meshmon.serviceConfig.Restart = lib.mkForce "on-failure";
      }) [ "Restart=on-failure" ]
    ))

    # Refused configurations.
    (test "keyFile in the Nix store fails an assertion" (
      _: failsAssertion (edit { keyFile = lib.mkForce "${storeDir}/0000-mesh.key"; }) "Nix store"
    ))
    (test "a public listen address without keyFile fails an assertion" (
      _: failsAssertion (edit { keyFile = lib.mkForce null; }) "keyFile must be set"
    ))
    (test "a listen port above 65535 fails an assertion" (
      _: failsAssertion (edit { settings.node.listen = lib.mkForce "0.0.0.0:70000"; }) "port must be 1-65535"
    ))
    (test "a dashboard store outside /var/lib/meshmon fails an assertion" (
      _:
      failsAssertion (edit {
        dashboard = true;
        settings.store.path = "/srv/meshmon/fleet.db";
      }) "is not under /var/lib/meshmon"
    ))
    (test "public base config is accepted" (_: eq (sys public).failed [ ]))
    (test "web: a public listen with a password file is accepted, the file a credential" (
      _:
      let
        w = sys (edit {
          dashboard = true;
          settings.web = {
            listen = "0.0.0.0:8080";
            password_file = "/run/keys/meshmon-web.pass";
            public_status = true;
          };
        });
      in
      both (eq [ w.failed w.parsed.web.listen ] [ [ ] "0.0.0.0:8080" ]) (unitHas w [
        "LoadCredential=web-password:/run/keys/meshmon-web.pass"
        "BindReadOnlyPaths=%d/web-password:/run/keys/meshmon-web.pass"
      ])
    ))
    (test "web: a public listen without a password file fails an assertion" (
      _:
      failsAssertion (edit {
        dashboard = true;
        settings.web.listen = "0.0.0.0:8080";
      }) "meshmon web-password"
    ))
    (test "web: only on dashboard nodes" (
      _: failsAssertion (edit { settings.web.listen = "127.0.0.1:8080"; }) "web dashboard runs on dashboard nodes"
    ))
    (test "rejects a host name in web.listen" (
      _: rejects (edit { settings.web.listen = "localhost:8080"; })
    ))
    (test "rejects keyFile given as a Nix path (it would be copied to the store)" (
      _: rejects (edit { keyFile = lib.mkForce ./test.nix; })
    ))
    (test "rejects a host name in listen" (
      _: rejects (edit { settings.node.listen = lib.mkForce "localhost:6130"; })
    ))
    (test "rejects a bad duration" (_: rejects (edit { settings.collect.interval = "1 sec"; })))
    (test "rejects an unknown settings key" (_: rejects (edit { settings.node.lisen = "x"; })))
    (test "rejects an alert op outside > >= < <= increase" (
      _:
      rejects (edit {
        settings.alert = [
          {
            name = "x";
            metric = "cpu.usage_pct";
            op = "=>";
            threshold = 1;
          }
        ];
      })
    ))
    (test "rejects an alert without name" (
      _: rejects (edit { settings.alert = [ { threshold = 95; } ]; })
    ))
    (test "rejects a non-number threshold" (
      _:
      rejects (edit {
        settings.alert = [
          {
            name = "disk-full";
            threshold = "95";
          }
        ];
      })
    ))
    (test "rejects a bad alert duration" (
      _:
      rejects (edit {
        settings.alert = [
          {
            name = "disk-full";
            for = "1 min";
          }
        ];
      })
    ))
    (test "rejects a bad notify.give_up_after" (_: rejects (edit { settings.notify.give_up_after = "1 day"; })))
    (test "rejects a non-http webhook" (_: rejects (edit { settings.notify.webhooks = [ "ftp://x" ]; })))

    # Package and flake.
    (test "package: pname meshmon, version from Cargo.toml" (
      _:
      eq [ pkg.args.pname pkg.args.version pkg.name ] [
        "meshmon"
        cargo.workspace.package.version
        "meshmon-${cargo.workspace.package.version}"
      ]
    ))
    (test "package: cargoLock from Cargo.lock, source holds every workspace member" (
      _:
      both (eq pkg.args.cargoLock.lockFile ../../Cargo.lock) (
        ok (all (m: elem (../.. + "/${m}") pkg.args.src.paths) cargo.workspace.members) (
          toJSON (map toString pkg.args.src.paths)
        )
      )
    ))
    (test "package: default features unless plain = true (the plain agent)" (
      _: eq [ pkg.args.buildNoDefaultFeatures pkgPlain.args.buildNoDefaultFeatures ] [ false true ]
    ))
    (test "package: RUSTFLAGS are .cargo/config.toml's (Poly1305's portable backend)" (
      _: eq pkg.args.env.RUSTFLAGS ''--cfg poly1305_backend="soft"''
    ))
    (test "package: builds the agent crate's meshmon binary, mainProgram matches" (
      _:
      eq
        [
          (elem agentCargo.package.name pkg.args.cargoBuildFlags)
          (elem pkg.meta.mainProgram (map (b: b.name) agentCargo.bin))
        ]
        [
          true
          true
        ]
    ))
    (test "flake: packages.<system>.default is the package" (
      _:
      eq (map (s: flakeOut.packages.${s}.default.name) [ "x86_64-linux" "aarch64-linux" ]) [
        pkg.name
        pkg.name
      ]
    ))
    (test "flake: overlays.default adds pkgs.meshmon" (
      _: eq (flakeOut.overlays.default pkgs pkgs).meshmon.name pkg.name
    ))
    (test "flake: nixosModules.default is the module" (
      _: both (eq sFlake.failed [ ]) (eq sFlake.execStart sMin.execStart)
    ))
    (test "flake: nixpkgs input is set" (_: ok (isString flake.inputs.nixpkgs.url) (toJSON flake.inputs)))
  ];
in
{
  inherit results;
  configs = {
    minimal = sMin.toml;
    mesh = sMesh.toml;
    smart = sSmart.toml;
    gpu = sGpu.toml;
    gpu-smart = sGpuSmart.toml;
    notify-files = sFiles.toml;
    notify-targets = sTargets.toml;
  };
  units = {
    minimal = sMin.unit;
    mesh = sMesh.unit;
    smart = sSmart.unit;
    gpu = sGpu.unit;
    gpu-smart = sGpuSmart.unit;
    notify-files = sFiles.unit;
    notify-targets = sTargets.unit;
  };
}
