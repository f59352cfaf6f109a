#!/usr/bin/env node
// A small OCPP 1.6J central system built on ocpp-rpc, an OCPP-J implementation
// written independently of this project (Node, ws, ajv), in strict mode: every CALL
// a station sends and every CALLRESULT it answers is validated against the OCPP 1.6
// schemas bundled with ocpp-rpc. Used by tests/interop/test_ocpp_rpc.py.
//
//   node csms.js [PORT] [--ping-ms N] [--heartbeat S]
//
// Binds 127.0.0.1 (PORT 0 or absent: any free port). Writes one JSON object per line
// on stdout; the first is {"event":"listening","port":N}. Then:
//
//   connected / disconnected   a station's websocket (identity, endpoint, subprotocol)
//   frame                      every websocket message, both directions, verbatim
//   call                       a CALL a station sent that reached a handler, in order
//   validation                 a strict-mode failure (direction: station-call,
//                              station-answer, csms-call, csms-answer)
//   bad-message                a frame ocpp-rpc found non-conforming (framing, ids)
//   problem                    a ledger inconsistency (unknown transaction id, ...)
//   reply / raw-reply          the outcome of a command below
//
// Commands, one JSON object per line on stdin:
//
//   {"ref": R, "cmd": "call", "station": ID, "action": A, "params": {...}}
//       a CSMS-initiated CALL through ocpp-rpc (validated before it is sent; add
//       "unchecked": true for a deliberately invalid one). Answers
//       {"event":"reply","ref":R,"ok":true,"result":{...}} or
//       {"event":"reply","ref":R,"ok":false,"code":C,"description":D}, both with the
//       CALL's "messageId" and the station's raw answer "frame".
//   {"ref": R, "cmd": "raw", "station": ID, "text": "...", "expect_id": "..."}
//       a raw websocket message; the station's answer with id expect_id comes back
//       as {"event":"raw-reply","ref":R,"frame":[...]}.
//   {"ref": R, "cmd": "ledger"}      the ledger so far, as {"event":"ledger",...}
//   {"cmd": "quit"} or end of stdin   close every connection and exit.

'use strict';

const readline = require('readline');
const { RPCServer, createRPCError, createValidator } = require('ocpp-rpc');
const OCPP16_SCHEMAS = require('ocpp-rpc/lib/schemas/ocpp1_6.json');

function parseArgs(argv) {
    const opts = { port: 0, pingMs: 30000, heartbeat: 300 };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (arg === '--ping-ms') opts.pingMs = Number(argv[++i]);
        else if (arg === '--heartbeat') opts.heartbeat = Number(argv[++i]);
        else if (/^\d+$/.test(arg)) opts.port = Number(arg);
        else throw new Error(`unknown argument ${arg}`);
    }
    return opts;
}

const opts = parseArgs(process.argv.slice(2));

function emit(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

// ocpp-rpc's own OCPP 1.6 validator (the same bundled schemas strict mode uses by
// default), except for params objects a test marks as deliberately invalid: those
// must reach the station so that its CALLERROR can be checked.
const unchecked = new WeakSet();
const validator = createValidator('ocpp1.6', OCPP16_SCHEMAS);
const validateStrictly = validator.validate.bind(validator);
validator.validate = (schemaId, params) =>
    params !== null && typeof params === 'object' && unchecked.has(params)
        ? true
        : validateStrictly(schemaId, params);

const server = new RPCServer({
    protocols: ['ocpp1.6'],
    strictMode: true,
    strictModeValidators: [validator],
    pingIntervalMs: opts.pingMs,
    callTimeoutMs: 10000,
});

// -- the ledger ---------------------------------------------------------------------

const clients = new Map(); // identity -> RPCServerClient
const ledger = { stations: {}, transactions: {}, problems: [], validation: [], badMessages: [] };
let nextTransactionId = 1000;

function stationRecord(identity) {
    if (!ledger.stations[identity]) {
        ledger.stations[identity] = { connections: 0, calls: [] };
    }
    return ledger.stations[identity];
}

function problem(identity, text) {
    ledger.problems.push({ station: identity, problem: text });
    emit({ event: 'problem', station: identity, problem: text });
}

function errorText(err) {
    return err && (err.message || err.rpcErrorMessage || String(err));
}

function idTagInfo(idTag) {
    if (/^INVALID/.test(idTag)) return { status: 'Invalid' };
    if (/^BLOCKED/.test(idTag)) return { status: 'Blocked' };
    return { status: 'Accepted' };
}

function knownTransaction(identity, transactionId, action) {
    const tx = ledger.transactions[transactionId];
    if (!tx) {
        problem(identity, `${action} for unknown transaction ${transactionId}`);
        return null;
    }
    if (tx.station !== identity) {
        problem(identity, `${action} for transaction ${transactionId} of ${tx.station}`);
        return null;
    }
    return tx;
}

// -- handlers: the CSMS side of each station-initiated action -------------------------

const handlers = {
    BootNotification: () => ({
        status: 'Accepted',
        currentTime: new Date().toISOString(),
        interval: opts.heartbeat,
    }),
    Heartbeat: () => ({ currentTime: new Date().toISOString() }),
    StatusNotification: () => ({}),
    Authorize: ({ params }) => ({ idTagInfo: idTagInfo(params.idTag) }),
    StartTransaction: ({ params }, identity) => {
        const transactionId = nextTransactionId++;
        ledger.transactions[transactionId] = {
            station: identity,
            connectorId: params.connectorId,
            idTag: params.idTag,
            meterStart: params.meterStart,
            meterStop: null,
            stopReason: null,
            meterValues: 0,
        };
        return { transactionId, idTagInfo: idTagInfo(params.idTag) };
    },
    MeterValues: ({ params }, identity) => {
        if (params.transactionId !== undefined) {
            const tx = knownTransaction(identity, params.transactionId, 'MeterValues');
            if (tx) {
                if (tx.meterStop !== null) {
                    problem(identity, `MeterValues after StopTransaction ${params.transactionId}`);
                }
                tx.meterValues += 1;
            }
        }
        return {};
    },
    StopTransaction: ({ params }, identity) => {
        const tx = knownTransaction(identity, params.transactionId, 'StopTransaction');
        if (tx) {
            if (tx.meterStop !== null) {
                problem(identity, `transaction ${params.transactionId} stopped twice`);
            }
            if (params.meterStop < tx.meterStart) {
                problem(identity, `transaction ${params.transactionId}: meterStop < meterStart`);
            }
            tx.meterStop = params.meterStop;
            tx.stopReason = params.reason ?? 'Local';
        }
        return params.idTag !== undefined ? { idTagInfo: idTagInfo(params.idTag) } : {};
    },
    DataTransfer: () => ({ status: 'Accepted' }),
    SecurityEventNotification: () => ({}),
    DiagnosticsStatusNotification: () => ({}),
    FirmwareStatusNotification: () => ({}),
};

server.on('client', (client) => {
    const identity = client.identity;
    const record = stationRecord(identity);
    record.connections += 1;
    clients.set(identity, client);
    const rawPending = new Map(); // message id -> command ref (raw commands)
    client.rawPending = rawPending;

    emit({
        event: 'connected',
        station: identity,
        endpoint: client.handshake.endpoint,
        protocol: client.protocol,
        offered: [...client.handshake.protocols],
        userAgent: client.handshake.headers['user-agent'] ?? null,
    });

    client.on('message', ({ message, outbound }) => {
        const text = message.toString();
        emit({ event: 'frame', station: identity, dir: outbound ? 'out' : 'in', text });
        if (outbound || rawPending.size === 0) return;
        let frame;
        try {
            frame = JSON.parse(text);
        } catch {
            return;
        }
        if (Array.isArray(frame) && (frame[0] === 3 || frame[0] === 4) && rawPending.has(frame[1])) {
            const ref = rawPending.get(frame[1]);
            rawPending.delete(frame[1]);
            emit({ event: 'raw-reply', ref, station: identity, frame });
        }
    });

    // For CSMS-initiated calls: which message id each params object went out with, and
    // the raw answer frame per id, so a reply can show exactly what the station sent.
    client.sentIds = new WeakMap();
    client.answers = new Map();
    client.on('response', ({ outbound, payload }) => {
        if (!outbound && Array.isArray(payload)) client.answers.set(payload[1], payload);
    });

    client.on('call', ({ outbound, payload }) => {
        if (outbound) {
            const params = payload[3];
            if (params !== null && typeof params === 'object') client.sentIds.set(params, payload[1]);
            return;
        }
        const [, messageId, action, params] = payload;
        record.calls.push({ action, messageId });
        emit({ event: 'call', station: identity, messageId, action, params });
    });

    client.on('strictValidationFailure', ({ messageId, method, params, result, error, outbound, isCall }) => {
        // outbound: our side produced it; isCall: a CALL rather than a CALLRESULT.
        const direction = isCall
            ? outbound ? 'csms-call' : 'station-call'
            : outbound ? 'csms-answer' : 'station-answer';
        const entry = {
            station: identity,
            direction,
            messageId,
            action: method,
            code: error?.rpcErrorCode ?? null,
            error: errorText(error),
            payload: isCall ? params : result,
        };
        ledger.validation.push(entry);
        emit({ event: 'validation', ...entry });
    });

    client.on('badMessage', ({ buffer, error, response }) => {
        const text = buffer.toString();
        let frame = null;
        try {
            frame = JSON.parse(text);
        } catch {
            // not JSON: reported below as is
        }
        // The answer to a raw command is "bad" to ocpp-rpc (an id it never sent);
        // it was expected and is reported as a raw-reply instead.
        const expected =
            Array.isArray(frame) && (frame[0] === 3 || frame[0] === 4) && client.rawAnswered?.has(frame[1]);
        const entry = { station: identity, text, error: errorText(error), response, expected: !!expected };
        if (!expected) ledger.badMessages.push(entry);
        emit({ event: 'bad-message', ...entry });
    });

    client.on('close', ({ code, reason }) => {
        if (clients.get(identity) === client) clients.delete(identity);
        emit({ event: 'disconnected', station: identity, code, reason });
    });

    for (const [action, handler] of Object.entries(handlers)) {
        client.handle(action, (call) => {
            const result = handler(call, identity);
            emit({ event: 'handled', station: identity, messageId: call.messageId, action, result });
            return result;
        });
    }
    client.handle(({ method }) => {
        throw createRPCError('NotImplemented', `${method} is not handled by this CSMS`);
    });
});

// -- commands -------------------------------------------------------------------------

async function command(cmd) {
    const ref = cmd.ref ?? null;
    if (cmd.cmd === 'ledger') {
        emit({ event: 'ledger', ref, ...ledger });
        return;
    }
    const client = clients.get(cmd.station);
    if (!client) {
        emit({ event: 'reply', ref, ok: false, code: 'NoSuchStation', description: `${cmd.station} is not connected` });
        return;
    }
    if (cmd.cmd === 'call') {
        const params = cmd.params ?? {};
        if (cmd.unchecked) unchecked.add(params);
        const answer = () => {
            const messageId = client.sentIds.get(params) ?? null;
            const frame = messageId !== null ? client.answers.get(messageId) ?? null : null;
            client.answers.delete(messageId);
            return { messageId, frame };
        };
        try {
            const result = await client.call(cmd.action, params);
            emit({ event: 'reply', ref, station: cmd.station, action: cmd.action, ok: true, result, ...answer() });
        } catch (err) {
            emit({
                event: 'reply',
                ref,
                station: cmd.station,
                action: cmd.action,
                ok: false,
                code: err.rpcErrorCode ?? err.name ?? 'Error',
                description: errorText(err),
                ...answer(),
            });
        }
    } else if (cmd.cmd === 'raw') {
        if (!client.rawAnswered) client.rawAnswered = new Set();
        if (cmd.expect_id !== undefined) {
            client.rawPending.set(cmd.expect_id, ref);
            client.rawAnswered.add(cmd.expect_id);
        }
        client.sendRaw(cmd.text);
    } else {
        emit({ event: 'reply', ref, ok: false, code: 'BadCommand', description: `unknown command ${cmd.cmd}` });
    }
}

let closing = false;

async function shutdown() {
    if (closing) return;
    closing = true;
    emit({ event: 'ledger', ref: null, ...ledger });
    await server.close({ force: true });
    emit({ event: 'closed' });
    process.exit(0);
}

async function main() {
    const httpServer = await server.listen(opts.port, '127.0.0.1');
    emit({ event: 'listening', port: httpServer.address().port, pid: process.pid });

    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (line) => {
        if (!line.trim()) return;
        let cmd;
        try {
            cmd = JSON.parse(line);
        } catch (err) {
            emit({ event: 'reply', ref: null, ok: false, code: 'BadCommand', description: errorText(err) });
            return;
        }
        if (cmd.cmd === 'quit') {
            shutdown();
            return;
        }
        command(cmd).catch((err) =>
            emit({ event: 'reply', ref: cmd.ref ?? null, ok: false, code: 'Error', description: errorText(err) }),
        );
    });
    // The test owns this process: when its end of stdin goes away, so do we.
    rl.on('close', shutdown);
}

process.on('SIGTERM', shutdown);
main().catch((err) => {
    process.stderr.write(`csms.js: ${err.stack || err}\n`);
    process.exit(1);
});
