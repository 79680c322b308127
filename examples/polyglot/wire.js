// Podium's wire, written by hand: CloudEvents 1.0 in the Kafka binary content mode.
// The contract: README "The wire" and "Writing a service without Podium", and the
// document `podium asyncapi --definitions PATH` writes.
"use strict";
const crypto = require("node:crypto");

const SPEC_VERSION = "1.0";
const JSON_TYPE = "application/json";
const TRIGGERS = "podium.triggers";
const WORKFLOWS = "podium.workflows";
const DEAD_LETTER = "podium.dlq";
const commands = (taskType) => `podium.tasks.${taskType}.commands`;
const outcomes = (taskType) => `podium.tasks.${taskType}.outcomes`;

// A record's ce_* headers as attributes ({type, id, workflowid, ...}) and its JSON data.
function read(message) {
  const attrs = {};
  let contentType = JSON_TYPE;
  for (const [name, value] of Object.entries(message.headers || {})) {
    const text = Buffer.isBuffer(value) ? value.toString("utf8") : String(value);
    if (name === "content-type") contentType = text;
    else if (name.startsWith("ce_")) attrs[name.slice(3)] = text;
  }
  for (const name of ["id", "source", "type", "specversion", "time", "workflowid"]) {
    if (!attrs[name]) throw new Error(`missing CloudEvents header ce_${name}`);
  }
  if (attrs.specversion !== SPEC_VERSION) throw new Error(`unsupported specversion ${attrs.specversion}`);
  if (!contentType.startsWith(JSON_TYPE)) throw new Error(`unsupported content-type ${contentType}`);
  const key = message.key ? message.key.toString("utf8") : null;
  if (key !== attrs.workflowid) throw new Error(`key ${key} is not the workflow id ${attrs.workflowid}`);
  if (message.value === null) throw new Error("record has no value (data)");
  return { attrs, data: JSON.parse(message.value.toString("utf8")) };
}

// A Kafka message (key, value, headers) for one event; `attrs` as `read` returns them.
function write(attrs, data) {
  const headers = {
    ce_specversion: SPEC_VERSION,
    ce_id: attrs.id || crypto.randomUUID().replaceAll("-", ""),
    ce_source: attrs.source,
    ce_type: attrs.type,
    ce_time: attrs.time || new Date().toISOString(),
    ce_subject: attrs.workflowid,
    ce_workflowid: attrs.workflowid,
    "content-type": JSON_TYPE,
  };
  for (const name of ["taskid", "attempt", "correlationid", "causationid", "traceparent"]) {
    if (attrs[name] !== undefined && attrs[name] !== null) headers[`ce_${name}`] = String(attrs[name]);
  }
  return { key: attrs.workflowid, value: JSON.stringify(data), headers };
}

module.exports = { TRIGGERS, WORKFLOWS, DEAD_LETTER, commands, outcomes, read, write };
