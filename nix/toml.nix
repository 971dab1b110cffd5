# A small TOML writer for meshmon's config, in plain Nix (builtins only, so it needs no nixpkgs
# and the same code runs under the real module system and under nix/tests/).
#
# Input: an attribute set of tables. Values may be strings, integers, floats, booleans, lists of
# those, attribute sets (tables) and lists of attribute sets (arrays of tables, `[[name]]`).
# `null` means "not set" and is left out, so meshmon applies its own default. Attributes named
# `_module` (the module system's bookkeeping in every submodule's value) are left out too.
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    isAttrs
    isBool
    isFloat
    isInt
    isList
    isString
    map
    match
    replaceStrings
    toJSON
    typeOf
    ;

  # JSON strings are TOML basic strings for everything JSON escapes (quote, backslash, control
  # characters as \n, \t or \u00XX); TOML also wants DEL escaped, which JSON leaves raw.
  del = builtins.fromJSON ''"\u007f"'';
  str = s: replaceStrings [ del ] [ "\\u007F" ] (toJSON s);

  # Nix prints 90.0 as "90", which TOML would read as an integer: keep it a float.
  float =
    f:
    let
      t = toJSON f;
    in
    if match ".*[.eEn].*" t != null then t else "${t}.0";

  key = k: if match "[A-Za-z0-9_-]+" k != null then k else str k;

  keep = as: filter (k: k != "_module" && as.${k} != null) (attrNames as);

  isTable = v: isAttrs v && !(v ? outPath);
  isTableArray = v: isList v && v != [ ] && builtins.all isTable v;

  value =
    path: v:
    if isString v then
      str v
    else if isBool v then
      (if v then "true" else "false")
    else if isInt v then
      toString v
    else if isFloat v then
      float v
    else if v ? outPath then
      str (toString v)
    else if isList v then
      "[" + concatStringsSep ", " (map (value path) v) + "]"
    else
      throw "toml.nix: ${concatStringsSep "." path}: cannot write a ${typeOf v} as a TOML value";

  # One table: its plain keys first (TOML needs them before any sub-table header), then its
  # sub-tables and arrays of tables, each under its full dotted name.
  table =
    path: as:
    let
      ks = keep as;
      plain = filter (k: !(isTable as.${k}) && !(isTableArray as.${k})) ks;
      tables = filter (k: isTable as.${k}) ks;
      arrays = filter (k: isTableArray as.${k}) ks;
      name = p: concatStringsSep "." (map key p);
      lines = map (k: "${key k} = ${value (path ++ [ k ]) as.${k}}\n") plain;
      sub = map (k: "\n[${name (path ++ [ k ])}]\n" + table (path ++ [ k ]) as.${k}) tables;
      arr = map (
        k: concatStringsSep "" (map (t: "\n[[${name (path ++ [ k ])}]]\n" + table (path ++ [ k ]) t) as.${k})
      ) arrays;
    in
    concatStringsSep "" (lines ++ sub ++ arr);
in
{
  # toTOML :: attrs -> string
  toTOML =
    as:
    let
      t = table [ ] as;
    in
    # Drop the blank line the first header would start with.
    if builtins.substring 0 1 t == "\n" then
      builtins.substring 1 (builtins.stringLength t) t
    else
      t;
}
