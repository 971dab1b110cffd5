# A small stand-in for the parts of nixpkgs' `lib` that nix/module.nix, nix/package.nix and
# flake.nix use, for checking them where nixpkgs cannot be downloaded (scripts/check_nix.sh).
#
# Written to behave like nixpkgs where it matters to those files, not to be complete:
# - the functions have nixpkgs' names, arguments and results (`toInt` rejects leading zeros,
#   `splitString` takes a literal separator, `getExe` reads meta.mainProgram, ...);
# - `evalModules` is a real (small) module system: option declarations from several modules,
#   definitions with mkIf / mkMerge / mkDefault / mkForce pushed down and discharged, priorities,
#   type checks on every definition, `default`, `apply`, `readOnly`, submodules (each value
#   carrying `_module` like nixpkgs'), and an error for every definition of an undeclared option;
# - types: bool, str, int, ints.*, number, float, path, package, enum, strMatching, nullOr,
#   either, oneOf, listOf, attrsOf, submodule, unspecified, lines; merges as in nixpkgs.
# Errors are `throw`s with nixpkgs' wording, so tests can catch them with builtins.tryEval.
let
  inherit (builtins)
    all
    any
    attrNames
    concatLists
    concatMap
    concatStringsSep
    elem
    elemAt
    filter
    foldl'
    functionArgs
    genList
    hasAttr
    head
    intersectAttrs
    isAttrs
    isBool
    isFloat
    isFunction
    isInt
    isList
    isPath
    isString
    length
    listToAttrs
    mapAttrs
    match
    replaceStrings
    stringLength
    substring
    tail
    toJSON
    ;

  lib = rec {
    # ---- lists, strings, attribute sets ------------------------------------------------------
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalAttrs = cond: as: if cond then as else { };
    optionalString = cond: s: if cond then s else "";
    inherit concatStringsSep elem concatLists;
    concatMapStringsSep = sep: f: xs: concatStringsSep sep (map f xs);
    concatStrings = concatStringsSep "";
    last =
      xs:
      assert xs != [ ] || throw "lists.last: list must not be empty!";
      elemAt xs (length xs - 1);
    hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
    hasSuffix =
      suf: s:
      let
        ls = stringLength s;
        lf = stringLength suf;
      in
      lf <= ls && substring (ls - lf) lf s == suf;
    removeSuffix =
      suf: s:
      if hasSuffix suf s then substring 0 (stringLength s - stringLength suf) s else s;
    escapeRegex =
      let
        special = [ "\\" "[" "{" "(" ")" "^" "$" "?" "*" "+" "|" "." ];
      in
      replaceStrings special (map (c: "\\${c}") special);
    splitString = sep: s: filter isString (builtins.split (escapeRegex (toString sep)) (toString s));
    toInt =
      s:
      let
        m = match "[[:space:]]*(-?[[:digit:]]+)[[:space:]]*" s;
      in
      if m == null then
        throw "toInt: Could not convert ${toJSON s} to int."
      else if match "0[[:digit:]]+" (head m) != null then
        throw "toInt: Ambiguity in interpretation of ${toJSON s} between octal and zero padded integer."
      else
        builtins.fromJSON (head m);
    mapAttrsToList = f: as: map (n: f n as.${n}) (attrNames as);
    filterAttrs =
      pred: as:
      listToAttrs (
        concatMap (n: if pred n as.${n} then [ { name = n; value = as.${n}; } ] else [ ]) (attrNames as)
      );
    genAttrs =
      names: f:
      listToAttrs (
        map (n: {
          name = n;
          value = f n;
        }) names
      );
    importTOML = path: builtins.fromTOML (builtins.readFile path);
    isDerivation = x: isAttrs x && (x.type or null) == "derivation";
    isStringLike = x: isString x || isPath x || (isAttrs x && (x ? outPath || x ? __toString));
    getExe = x: "${x}/bin/${x.meta.mainProgram}";
    makeBinPath = xs: concatStringsSep ":" (map (x: "${x}/bin") xs);

    licenses.mit = {
      spdxId = "MIT";
      shortName = "mit";
    };
    platforms.linux = [
      "aarch64-linux"
      "armv7l-linux"
      "i686-linux"
      "x86_64-linux"
    ];

    # lib.fileset, enough for toSource/unions: every file must exist under root.
    fileset = {
      unions = paths: {
        _type = "fileset";
        inherit paths;
      };
      toSource =
        { root, fileset }:
        let
          paths = if isPath fileset then [ fileset ] else fileset.paths;
          bad = filter (p: !(builtins.pathExists p) || !(hasPrefix (toString root) (toString p))) paths;
        in
        if bad != [ ] then
          throw "lib.fileset.toSource: ${toString (head bad)} does not exist or is not under ${toString root}"
        else
          {
            _type = "source";
            inherit root paths;
            outPath = "${builtins.storeDir}/00000000000000000000000000000000-source";
          };
    };

    # ---- module system: declarations ---------------------------------------------------------
    mkOption = attrs: attrs // { _type = "option"; };
    isOption = x: isAttrs x && (x._type or null) == "option";
    mkEnableOption =
      name:
      mkOption {
        type = types.bool;
        default = false;
        example = true;
        description = "Whether to enable ${name}.";
      };
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };

    # ---- module system: definitions ----------------------------------------------------------
    mkIf = condition: content: {
      _type = "if";
      inherit condition content;
    };
    mkMerge = contents: {
      _type = "merge";
      inherit contents;
    };
    mkOverride = priority: content: {
      _type = "override";
      inherit priority content;
    };
    mkOptionDefault = mkOverride 1500;
    mkDefault = mkOverride 1000;
    mkForce = mkOverride 50;

    showOption = loc: concatStringsSep "." loc;
    showVal = v: if isAttrs v || isFunction v then "<${builtins.typeOf v}>" else toJSON v;

    property = v: if isAttrs v then v._type or null else null;

    # An attribute set definition (maybe wrapped in mkIf/mkMerge/mkOverride) as plain attribute
    # sets whose values carry the wrappers down (nixpkgs' pushDownProperties).
    pushDown =
      v:
      let
        p = property v;
      in
      if p == "merge" then
        concatMap pushDown v.contents
      else if p == "if" then
        map (mapAttrs (_: mkIf v.condition)) (pushDown v.content)
      else if p == "override" then
        map (mapAttrs (_: mkOverride v.priority)) (pushDown v.content)
      else if isAttrs v then
        [ v ]
      else
        throw "expected an attribute set, not ${showVal v}";

    # A leaf definition as a list of { priority, value } (nixpkgs' dischargeProperties).
    discharge =
      prio: v:
      let
        p = property v;
      in
      if p == "merge" then
        concatMap (discharge prio) v.contents
      else if p == "if" then
        if !(isBool v.condition) then
          throw "mkIf called with a non-Boolean condition"
        else if v.condition then
          discharge prio v.content
        else
          [ ]
      else if p == "override" then
        discharge v.priority v.content
      else
        [
          {
            priority = prio;
            value = v;
          }
        ];

    # defs: [ { file, value } ] -> { isDefined, value? } (nixpkgs' mergeDefinitions).
    mergeDefinitions =
      loc: type: defs:
      let
        flat = concatMap (
          d:
          map (x: {
            inherit (d) file;
            inherit (x) priority value;
          }) (discharge 100 d.value)
        ) defs;
        best = foldl' (m: d: if d.priority < m then d.priority else m) 9999 flat;
        kept = filter (d: d.priority == best) flat;
        bad = filter (d: !(type.check d.value)) kept;
      in
      if kept == [ ] then
        { isDefined = false; }
      else if bad != [ ] then
        throw "A definition for option `${showOption loc}' is not of type `${type.description}'. Definition value in ${(head bad).file}: ${showVal (head bad).value}"
      else
        {
          isDefined = true;
          value = type.merge loc (
            map (d: {
              inherit (d) file value;
            }) kept
          );
        };

    mergeEqualOption =
      loc: defs:
      let
        first = head defs;
      in
      if defs == [ ] then
        throw "option `${showOption loc}' has no definitions"
      else if any (d: d.value != first.value) (tail defs) then
        throw "The option `${showOption loc}' has conflicting definition values: ${concatStringsSep ", " (map (d: "${showVal d.value} in ${d.file}") defs)}"
      else
        first.value;

    mergeOneOption =
      loc: defs:
      if length defs == 1 then
        (head defs).value
      else
        throw "The option `${showOption loc}' is defined multiple times (${concatStringsSep ", " (map (d: d.file) defs)}).";

    mergeDefaultOption =
      loc: defs:
      let
        vs = map (d: d.value) defs;
      in
      if length vs == 1 then
        head vs
      else if all isList vs then
        concatLists vs
      else if all isAttrs vs then
        foldl' (a: b: a // b) { } vs
      else if all isBool vs then
        any (x: x) vs
      else if all isString vs then
        concatStringsSep "" vs
      else
        throw "Cannot merge definitions of `${showOption loc}'.";

    # ---- types -------------------------------------------------------------------------------
    mkOptionType =
      {
        name,
        description ? name,
        check ? (_: true),
        merge ? mergeDefaultOption,
        ...
      }@a:
      a
      // {
        _type = "option-type";
        inherit
          name
          description
          check
          merge
          ;
      };

    types = rec {
      unspecified = mkOptionType { name = "unspecified"; };
      bool = mkOptionType {
        name = "bool";
        description = "boolean";
        check = isBool;
        merge = mergeEqualOption;
      };
      str = mkOptionType {
        name = "str";
        description = "string";
        check = isString;
        merge = mergeEqualOption;
      };
      lines = mkOptionType {
        name = "lines";
        description = "strings concatenated with \"\\n\"";
        check = isString;
        merge = loc: defs: concatStringsSep "\n" (map (d: d.value) defs);
      };
      int = mkOptionType {
        name = "int";
        description = "signed integer";
        check = isInt;
        merge = mergeEqualOption;
      };
      float = mkOptionType {
        name = "float";
        description = "floating point number";
        check = isFloat;
        merge = mergeEqualOption;
      };
      number = either int float;
      ints = rec {
        between =
          lo: hi:
          mkOptionType {
            name = "intBetween";
            description = "integer between ${toString lo} and ${toString hi} (both inclusive)";
            check = x: isInt x && x >= lo && x <= hi;
            merge = mergeEqualOption;
          };
        unsigned = mkOptionType {
          name = "unsignedInt";
          description = "unsigned integer, meaning >=0";
          check = x: isInt x && x >= 0;
          merge = mergeEqualOption;
        };
        positive = mkOptionType {
          name = "positiveInt";
          description = "positive integer, meaning >0";
          check = x: isInt x && x > 0;
          merge = mergeEqualOption;
        };
        u16 = between 0 65535;
      };
      port = ints.u16;
      path = mkOptionType {
        name = "path";
        description = "path";
        check = x: lib.isStringLike x && substring 0 1 (toString x) == "/";
        merge = mergeEqualOption;
      };
      package = mkOptionType {
        name = "package";
        description = "package";
        check = x: lib.isDerivation x;
        merge = mergeOneOption;
      };
      enum =
        values:
        mkOptionType {
          name = "enum";
          description = "one of ${concatStringsSep ", " (map toJSON values)}";
          check = x: elem x values;
          merge = mergeEqualOption;
        };
      strMatching =
        pattern:
        mkOptionType {
          name = "strMatching ${toJSON pattern}";
          description = "string matching the pattern ${pattern}";
          check = x: isString x && match pattern x != null;
          merge = mergeEqualOption;
        };
      nullOr =
        t:
        mkOptionType {
          name = "nullOr";
          description = "null or ${t.description}";
          check = x: x == null || t.check x;
          merge =
            loc: defs:
            if all (d: d.value == null) defs then
              null
            else if any (d: d.value == null) defs then
              throw "The option `${showOption loc}' is defined both null and not null."
            else
              t.merge loc defs;
        };
      either =
        a: b:
        mkOptionType {
          name = "either";
          description = "${a.description} or ${b.description}";
          check = x: a.check x || b.check x;
          merge =
            loc: defs:
            if all (d: a.check d.value) defs then
              a.merge loc defs
            else if all (d: b.check d.value) defs then
              b.merge loc defs
            else
              mergeOneOption loc defs;
        };
      oneOf = ts: foldl' either (head ts) (tail ts);
      listOf =
        t:
        mkOptionType {
          name = "listOf";
          description = "list of ${t.description}";
          check = isList;
          merge =
            loc: defs:
            map (x: x.value) (
              filter (x: x.isDefined) (
                concatLists (
                  genList (
                    n:
                    let
                      d = elemAt defs n;
                    in
                    genList (
                      m:
                      mergeDefinitions (loc ++ [ "[definition ${toString (n + 1)}-entry ${toString (m + 1)}]" ]) t [
                        {
                          inherit (d) file;
                          value = elemAt d.value m;
                        }
                      ]
                    ) (length d.value)
                  ) (length defs)
                )
              )
            );
        };
      attrsOf =
        t:
        mkOptionType {
          name = "attrsOf";
          description = "attribute set of ${t.description}";
          check = isAttrs;
          merge =
            loc: defs:
            let
              pushed = concatMap (
                d:
                map (v: {
                  inherit (d) file;
                  value = v;
                }) (pushDown d.value)
              ) defs;
              names = attrNames (foldl' (a: d: a // d.value) { } pushed);
              merged = map (
                n:
                {
                  name = n;
                }
                // mergeDefinitions (loc ++ [ n ]) t (
                  concatMap (
                    d:
                    if d.value ? ${n} then
                      [
                        {
                          inherit (d) file;
                          value = d.value.${n};
                        }
                      ]
                    else
                      [ ]
                  ) pushed
                )
              ) names;
            in
            listToAttrs (
              map (x: {
                inherit (x) name value;
              }) (filter (x: x.isDefined) merged)
            );
        };
      submodule =
        module:
        mkOptionType {
          name = "submodule";
          description = "submodule";
          check = x: isAttrs x || isFunction x;
          merge =
            loc: defs:
            (evalModules {
              prefix = loc;
              specialArgs.name = lib.last loc;
              modules = [ module ] ++ map (d: if isFunction d.value then d.value else { _file = d.file; config = d.value; }) defs;
            }).config;
        };
    };

    # ---- module system: evaluation -----------------------------------------------------------
    # modules: functions, attribute sets or paths. Returns { config, options }.
    evalModules =
      {
        modules,
        prefix ? [ ],
        specialArgs ? { },
      }:
      let
        args =
          specialArgs
          // {
            inherit lib config options;
          };
        load =
          file: m:
          let
            f = if isPath m || isString m then import m else m;
            file' = if isPath m || isString m then toString m else file;
            r = if isFunction f then f (intersectAttrs (functionArgs f) args) else f;
            isFull = r ? options || r ? config;
            imports = r.imports or [ ];
          in
          [
            {
              file = r._file or file';
              options = r.options or { };
              config =
                if isFull then
                  r.config or { }
                else
                  removeAttrs r [
                    "imports"
                    "_file"
                    "meta"
                    "key"
                  ];
            }
          ]
          ++ concatMap (load file') imports;
        loaded = concatLists (genList (n: load "<module ${toString n}>" (elemAt modules n)) (length modules));

        mergeDecls =
          loc: a: b:
          a
          // mapAttrs (
            n: v:
            if !(a ? ${n}) then
              v
            else if isOption v || isOption a.${n} then
              throw "The option `${showOption (loc ++ [ n ])}' is declared more than once."
            else
              mergeDecls (loc ++ [ n ]) a.${n} v
          ) b;
        options = foldl' (mergeDecls prefix) { } (map (m: m.options) loaded);

        evalOption =
          loc: opt: defs:
          let
            withDefault =
              (
                if opt ? default then
                  [
                    {
                      file = "the option's default";
                      value = mkOptionDefault opt.default;
                    }
                  ]
                else
                  [ ]
              )
              ++ defs;
            r = mergeDefinitions loc opt.type withDefault;
            v =
              if (opt.readOnly or false) && defs != [ ] then
                throw "The option `${showOption loc}' is read-only, but it's set in ${(head defs).file}."
              else if r.isDefined then
                r.value
              else
                throw "The option `${showOption loc}' is used but not defined.";
          in
          if opt ? apply then opt.apply v else v;

        evalTree =
          loc: decls: defs:
          let
            pushed = concatMap (
              d:
              map (v: {
                inherit (d) file;
                value = v;
              }) (pushDown d.value)
            ) defs;
            undeclared = concatMap (
              d:
              map (n: {
                inherit (d) file;
                name = n;
              }) (filter (n: !(decls ? ${n})) (attrNames d.value))
            ) pushed;
            sub =
              n:
              concatMap (
                d:
                if d.value ? ${n} then
                  [
                    {
                      inherit (d) file;
                      value = d.value.${n};
                    }
                  ]
                else
                  [ ]
              ) pushed;
          in
          if undeclared != [ ] then
            throw "The option `${showOption (loc ++ [ (head undeclared).name ])}' does not exist. Definition in ${(head undeclared).file}."
          else
            mapAttrs (
              n: o: if isOption o then evalOption (loc ++ [ n ]) o (sub n) else evalTree (loc ++ [ n ]) o (sub n)
            ) decls;

        config =
          evalTree prefix options (
            map (m: {
              inherit (m) file;
              value = m.config;
            }) loaded
          )
          // {
            _module = {
              args = args;
              check = true;
              freeformType = null;
            };
          };
      in
      {
        inherit config options;
      };
  };
in
lib
