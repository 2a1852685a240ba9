// Config form generated from the SimConfig JSON schema (GET /api/schema).
//
// Every leaf input carries data-path="<dotted key path>" (the same format as the server's
// error paths: "cluster.instances[1].gpu"), and an error slot data-error-for="<path>".
// The form edits one plain object (the config); structural changes re-render the form.

const FILE_KEY = /(?:^|_)(?:path|paths|file|files|dir)$/;

export function pathString(parts) {
  let out = "";
  for (const p of parts) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${p}` : p;
  }
  return out;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

function clone(x) {
  return x === undefined ? undefined : JSON.parse(JSON.stringify(x));
}

export class SchemaForm {
  // schema: SimConfig JSON schema; catalog: {models, gpus}; hooks: {onChange, onUpload}
  constructor(root, schema, catalog, hooks, choices = {}) {
    this.choices = choices;
    this.root = root;
    this.schema = schema;
    this.defs = schema.$defs || {};
    this.catalog = catalog;
    this.hooks = hooks;
    this.value = {};
  }

  resolve(node) {
    let n = node || {};
    while (n.$ref) {
      const name = n.$ref.split("/").pop();
      const { $ref, ...rest } = n;
      n = { ...rest, ...this.defs[name], title: rest.title || this.defs[name]?.title };
    }
    return n;
  }

  defaultFor(node) {
    const n = this.resolve(node);
    if (n.default !== undefined) return clone(n.default);
    if (n.oneOf && n.discriminator) return this.defaultFor(n.oneOf[0]);
    if (n.properties) {
      const out = {};
      for (const [k, p] of Object.entries(n.properties)) {
        const v = this.defaultFor(p);
        if (v !== undefined) out[k] = v;
      }
      return out;
    }
    if (n.type === "array") return [];
    if (n.anyOf) {
      if (n.anyOf.some((m) => m.type === "null")) return null;
      if (this.pickerKind(n)) return this.pickerDefault(this.pickerKind(n));
      return this.defaultFor(n.anyOf[0]);
    }
    if (n.const !== undefined) return n.const;
    if (n.enum) return n.enum[0];
    if (n.type === "string") return "";
    return undefined;
  }

  setValue(config) {
    this.value = clone(config) || {};
    this.render();
  }

  get(parts) {
    let node = this.value;
    for (const p of parts) {
      if (node === null || node === undefined) return undefined;
      node = node[p];
    }
    return node;
  }

  set(parts, v, rerender = false) {
    let node = this.value;
    for (const p of parts.slice(0, -1)) {
      if (node[p] === null || node[p] === undefined || typeof node[p] !== "object") node[p] = {};
      node = node[p];
    }
    node[parts[parts.length - 1]] = v;
    if (rerender) this.render();
    this.hooks.onChange?.(this.value);
  }

  render() {
    const top = this.schema;
    const general = el("fieldset", { class: "section", "data-section": "general" },
      el("legend", { text: "general" }));
    const sections = [];
    for (const [key, prop] of Object.entries(top.properties || {})) {
      const n = this.resolve(prop);
      const isSection = n.properties || (n.oneOf && n.discriminator);
      if (isSection) sections.push(this.section(key, prop));
      else general.append(this.field([key], prop, key));
    }
    this.root.replaceChildren(general, ...sections);
  }

  section(key, prop) {
    const details = el("details", { class: "section", open: true, "data-section": key },
      el("summary", { text: key }));
    details.append(this.objectBody([key], prop));
    return details;
  }

  objectBody(parts, prop) {
    const n = this.resolve(prop);
    if (n.oneOf && n.discriminator) return this.unionBody(parts, n);
    const box = el("div", { class: "fields" });
    if (n.description) box.append(el("p", { class: "help", text: helpText(n.description) }));
    for (const [key, child] of Object.entries(n.properties || {})) {
      box.append(this.field([...parts, key], child, key));
    }
    return box;
  }

  unionBody(parts, n) {
    const tag = n.discriminator.propertyName;
    const mapping = n.discriminator.mapping || {};
    let value = this.get(parts);
    if (!value || typeof value !== "object") {
      value = this.defaultFor(n);
      this.set(parts, value);
    }
    const current = value[tag];
    const select = el("select", {
      "data-path": pathString([...parts, tag]),
      id: "f-" + pathString([...parts, tag]),
      onchange: (e) => {
        const branch = { $ref: mapping[e.target.value] };
        const fresh = this.defaultFor(branch) || {};
        fresh[tag] = e.target.value;
        this.set(parts, fresh, true);
      },
    });
    for (const kind of Object.keys(mapping)) {
      select.append(el("option", { value: kind, text: kind, selected: kind === current }));
    }
    const box = el("div", { class: "fields" });
    box.append(this.row([...parts, tag], tag, select, null));
    const branch = this.resolve({ $ref: mapping[current] || n.oneOf[0].$ref });
    if (branch.description) box.append(el("p", { class: "help", text: helpText(branch.description) }));
    for (const [key, child] of Object.entries(branch.properties || {})) {
      if (key !== tag) box.append(this.field([...parts, key], child, key));
    }
    return box;
  }

  row(parts, label, control, help) {
    const p = pathString(parts);
    return el("div", { class: "field", "data-field": p },
      el("label", { for: control.id || control.querySelector?.("[id]")?.id || null, text: label,
        title: help || null }),
      control,
      el("div", { class: "field-error", "data-error-for": p, role: "alert" }));
  }

  field(parts, prop, key) {
    const n = this.resolve(prop);
    const help = n.description || prop.description || "";
    const p = pathString(parts);
    const value = this.get(parts);
    if (n.oneOf && n.discriminator) {
      return el("fieldset", { class: "sub", "data-field": p }, el("legend", { text: key }),
        this.unionBody(parts, n));
    }
    const members = n.anyOf ? n.anyOf.map((m) => this.resolve(m)) : null;
    const nullable = members && members.some((m) => m.type === "null");
    const nonNull = members ? members.filter((m) => m.type !== "null") : null;
    if (members && this.pickerKind(n)) return this.row(parts, key, this.picker(parts, n, value), help);
    if (members && nonNull.length === 1 && nonNull[0].properties) {
      return this.optionalObject(parts, nonNull[0], key, value);
    }
    if (members && nonNull.length === 1) {
      return this.field_scalar(parts, { ...nonNull[0], title: n.title }, key, value, nullable, help);
    }
    if (members) return this.row(parts, key, this.jsonBox(parts, value), help);
    if (n.properties) {
      return el("fieldset", { class: "sub", "data-field": p }, el("legend", { text: key }),
        this.objectBody(parts, n));
    }
    if (n.type === "object") return this.row(parts, key, this.jsonBox(parts, value ?? {}), help);
    if (n.type === "array") return this.arrayField(parts, n, key, value, help);
    return this.field_scalar(parts, n, key, value, false, help);
  }

  field_scalar(parts, n, key, value, nullable, help) {
    const p = pathString(parts);
    const id = "f-" + p;
    let control;
    if (n.enum || n.const !== undefined) {
      const options = n.enum || [n.const];
      control = el("select", { id, "data-path": p,
        onchange: (e) => this.set(parts, e.target.value === "" ? null : e.target.value) });
      if (nullable) control.append(el("option", { value: "", text: "(none)", selected: value === null }));
      for (const o of options) control.append(el("option", { value: o, text: o, selected: o === value }));
    } else if (n.type === "boolean") {
      control = el("input", { id, type: "checkbox", "data-path": p, checked: !!value,
        onchange: (e) => this.set(parts, e.target.checked) });
    } else if (n.type === "integer" || n.type === "number") {
      control = el("input", { id, type: "text", inputmode: "decimal", "data-path": p,
        value: value === null || value === undefined ? "" : String(value),
        placeholder: nullable ? "(none)" : "",
        onchange: (e) => this.set(parts, parseNumber(e.target.value, nullable)) });
    } else {
      const names = this.suggestions(p, key);
      control = el("input", { id, type: "text", "data-path": p, value: value ?? "",
        placeholder: nullable ? "(none)" : names ? names.join(" | ") : "",
        list: names ? `dl-${p}` : null,
        onchange: (e) => this.set(parts, e.target.value === "" && nullable ? null : e.target.value) });
      if (names) {
        const list = el("datalist", { id: `dl-${p}` });
        for (const n of names) list.append(el("option", { value: n }));
        control = el("div", { class: "stack" }, control, list);
      }
    }
    const row = this.row(parts, key, control, help);
    if (FILE_KEY.test(key)) row.append(this.uploadControl(parts));
    return row;
  }

  suggestions(path, key) {
    if (this.choices[path]) return this.choices[path];
    const bare = Object.keys(this.choices).find((k) => !k.includes(".") && k === key);
    return bare ? this.choices[bare] : null;
  }

  uploadControl(parts) {
    const p = pathString(parts);
    const input = el("input", { type: "file", "data-upload-for": p, id: "upload-" + p,
      onchange: async (e) => {
        const file = e.target.files[0];
        if (!file) return;
        const id = await this.hooks.onUpload?.(file, p);
        if (id) this.set(parts, id, true);
      } });
    return el("div", { class: "upload" }, el("span", { class: "help", text: "upload a trace: " }), input);
  }

  pickerKind(n) {
    const members = (n.anyOf || []).map((m) => this.resolve(m));
    if (!members.some((m) => m.type === "string")) return null;
    const titles = members.map((m) => m.title || "");
    if (titles.includes("ModelSpec")) return "models";
    if (titles.includes("GPUSpec")) return "gpus";
    return null;
  }

  pickerDefault(kind) {
    if (kind === "gpus" && typeof this.value.gpu === "string") return this.value.gpu;
    const list = this.catalog[kind] || [];
    return list.length ? list[0].id : "";
  }

  picker(parts, n, value) {
    const kind = this.pickerKind(n);
    const p = pathString(parts);
    const nullable = n.anyOf.some((m) => m.type === "null");
    const inline = value !== null && typeof value === "object";
    const select = el("select", { id: "f-" + p, "data-path": p, "data-catalog": kind,
      onchange: (e) => {
        const v = e.target.value;
        if (v === "__inline__") {
          const base = (this.catalog[kind] || [])[0] || {};
          const { id, kv_bytes_per_token, ...spec } = base;
          this.set(parts, spec, true);
        } else this.set(parts, v === "" ? null : v, true);
      } });
    if (nullable) select.append(el("option", { value: "", text: "(default)", selected: value === null }));
    const names = (this.catalog[kind] || []).map((e) => e.id);
    if (typeof value === "string" && value && !names.includes(value.toLowerCase())) names.push(value);
    for (const name of names) {
      const sel = typeof value === "string" && name === value.toLowerCase();
      select.append(el("option", { value: name, text: name, selected: sel }));
    }
    select.append(el("option", { value: "__inline__", text: "(inline spec…)", selected: inline }));
    if (!inline) return select;
    return el("div", { class: "stack" }, select, this.jsonBox(parts, value));
  }

  optionalObject(parts, objSchema, key, value) {
    const p = pathString(parts);
    const enabled = value !== null && value !== undefined;
    const toggle = el("input", { type: "checkbox", checked: enabled, "data-toggle-for": p,
      id: "toggle-" + p,
      onchange: (e) => this.set(parts, e.target.checked ? this.defaultFor(objSchema) : null, true) });
    const fs = el("fieldset", { class: "sub", "data-field": p },
      el("legend", {}, toggle, el("label", { for: "toggle-" + p, text: ` ${key}` })),
      el("div", { class: "field-error", "data-error-for": p, role: "alert" }));
    if (enabled) fs.append(this.objectBody(parts, objSchema));
    return fs;
  }

  arrayField(parts, n, key, value, help) {
    const items = this.resolve(n.items || {});
    const p = pathString(parts);
    if (!items.properties) {
      const text = Array.isArray(value) ? value.join(", ") : "";
      const input = el("input", { type: "text", id: "f-" + p, "data-path": p, value: text,
        placeholder: "comma-separated",
        onchange: (e) => this.set(parts, splitList(e.target.value, items.type)) });
      return this.row(parts, key, input, help);
    }
    const list = Array.isArray(value) ? value : [];
    const fs = el("fieldset", { class: "sub rows", "data-field": p, "data-rows-for": p },
      el("legend", { text: `${key} (${list.length})` }),
      el("div", { class: "field-error", "data-error-for": p, role: "alert" }));
    if (help) fs.append(el("p", { class: "help", text: helpText(help) }));
    list.forEach((_, i) => {
      const rowParts = [...parts, i];
      const box = el("div", { class: "row-item", "data-row": pathString(rowParts) },
        el("div", { class: "row-head" }, el("strong", { text: `#${i}` }),
          el("button", { type: "button", class: "small", "data-testid": `remove-row-${p}-${i}`,
            text: "remove", onclick: () => { list.splice(i, 1); this.set(parts, list, true); } })));
      box.append(this.objectBody(rowParts, items));
      fs.append(box);
    });
    fs.append(el("button", { type: "button", class: "small", "data-testid": `add-row-${p}`,
      id: `add-row-${p}`, text: `+ add ${key === "instances" ? "GPU row" : "row"}`,
      onclick: () => { list.push(this.defaultFor(items)); this.set(parts, list, true); } }));
    return fs;
  }

  jsonBox(parts, value) {
    const p = pathString(parts);
    return el("textarea", { id: "f-" + p, "data-path": p, class: "json", rows: 3,
      text: JSON.stringify(value, null, 1),
      onchange: (e) => {
        try { this.set(parts, JSON.parse(e.target.value)); }
        catch { this.hooks.onLocalError?.(p, "not valid JSON"); }
      } });
  }

  showErrors(errors) {
    for (const slot of this.root.querySelectorAll(".field-error")) slot.textContent = "";
    for (const node of this.root.querySelectorAll(".invalid")) node.classList.remove("invalid");
    const unplaced = [];
    for (const err of errors) {
      const slot = this.findSlot(err.path);
      if (!slot) { unplaced.push(err); continue; }
      slot.textContent = slot.textContent ? `${slot.textContent}; ${err.message}` : err.message;
      slot.closest(".field, fieldset")?.classList.add("invalid");
    }
    return unplaced;
  }

  findSlot(path) {
    let p = path || "";
    while (p) {
      const slot = this.root.querySelector(`[data-error-for="${CSS.escape(p)}"]`);
      if (slot) return slot;
      const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
      p = cut > 0 ? p.slice(0, cut) : "";
    }
    return null;
  }
}

export function helpText(text) {
  return (text || "").split("\n")[0].replaceAll("``", "");
}

function parseNumber(text, nullable) {
  const t = text.trim();
  if (t === "") return nullable ? null : "";
  const v = Number(t);
  return Number.isFinite(v) ? v : t;
}

function splitList(text, type) {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s);
  return type === "integer" || type === "number" ? parts.map((s) => parseNumber(s, false)) : parts;
}
