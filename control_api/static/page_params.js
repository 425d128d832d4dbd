// voicenode pages (/phone, /analytics): their settings read once from the address.
"use strict";

// Fill `fields[name]` for each of `names` from the fragment (#key=...) or the query, then keep
// the key out of the address bar, the history and bookmarks (and out of anything that logs
// URLs): drop ?key= and the whole fragment once read.
function readPageParams(fields, names) {
  const params = new URLSearchParams(location.search);
  const frag = new URLSearchParams(location.hash.replace(/^#/, ""));
  for (const name of names) {
    const value = frag.get(name) || params.get(name);
    if (value) fields[name].value = value;
  }
  if (params.has("key") || location.hash) {
    params.delete("key");
    const query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
  }
}
