/**
 * A real NATS JetStream cluster for tests: three (or more) `nats-server` processes on 127.0.0.1 only,
 * each with its own client, route and monitoring port (free ports found at run time) and its own
 * JetStream store folder under one temporary folder in os.tmpdir(), routed to each other.
 *
 * Learned from the NATS JavaScript client's own test launcher (nats.js nst/src/launcher.ts): a
 * config file per server, readiness read from the monitoring endpoint's `/jsz` (every live server
 * names the same meta leader), SIGKILL to stop. Unlike it, ports are chosen before start (so a
 * restarted node keeps its ports and its store), and the servers never outlive the test process:
 * they are started under `setpriv --pdeathsig KILL` where util-linux has it (the kernel kills them if
 * the test process dies, even by SIGKILL), and an exit hook kills any still running. `close()` kills
 * every server and removes the folder; tests call it in `afterAll`, so it runs when a test fails.
 *
 * Nodes are addressed by index (0, 1, 2); every signal goes to the node's pid.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** How much of each server's log (stderr) is kept for a failure message. */
const logBytesMax = 64 * 1024;
/** How long one monitoring request may take: a loaded machine, but a SIGSTOPped server never answers. */
const monitorRequestMs = 3_000;
const pollMs = 100;

export interface NatsClusterOptions {
  /** Number of servers; 3 unless told (a JetStream cluster needs a majority of them alive). */
  nodes?: number;
  /** How long start() waits for the meta leader, and restart() for the node to rejoin. */
  readyTimeoutMs?: number;
  /** Largest message payload the servers accept (nats-server's max_payload; 1 MiB by default). */
  maxPayloadBytes?: number;
}

export type NodeState = 'running' | 'stopped' | 'killed';

export interface NatsNode {
  readonly index: number;
  /** The server_name: what JetStream reports as a stream's or the meta group's leader. */
  readonly name: string;
  readonly clientPort: number;
  readonly routePort: number;
  readonly monitorPort: number;
  readonly storeDir: string;
  /** nats://127.0.0.1:<clientPort> */
  readonly url: string;
  /** The pid of the running (or stopped) server process, or undefined after kill. */
  pid: number | undefined;
  state: NodeState;
}

interface NodeProcess {
  child: ChildProcess;
  exited: Promise<void>;
}

interface JszResponse {
  server_id?: string;
  meta_cluster?: { name?: string; leader?: string; replicas?: { name: string; current: boolean }[] };
  account_details?: {
    stream_detail?: {
      name: string;
      cluster?: { leader?: string; replicas?: { name: string; current: boolean }[] };
      state?: { messages: number; first_seq: number; last_seq: number };
      consumer_detail?: { name: string; cluster?: { leader?: string } }[];
    }[];
  }[];
}

const hasSetpriv = spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;

/** Every live server of every cluster of this process, killed synchronously if the process exits. */
const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

/** `count` distinct free TCP ports on 127.0.0.1: all held open together, then released. */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((server) => {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port from listen(0)');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

export class NatsCluster {
  readonly root: string;
  readonly nodes: NatsNode[];
  readonly #processes = new Map<number, NodeProcess>();
  /** Each node's log across its runs (its last 64 KiB): kept after the process exits. */
  readonly #logs = new Map<number, string>();
  readonly #readyTimeoutMs: number;
  readonly #maxPayloadBytes: number;
  #closed = false;

  private constructor(root: string, nodes: NatsNode[], readyTimeoutMs: number, maxPayloadBytes: number) {
    this.root = root;
    this.nodes = nodes;
    this.#readyTimeoutMs = readyTimeoutMs;
    this.#maxPayloadBytes = maxPayloadBytes;
  }

  /**
   * Starts the servers and waits until JetStream is ready: every server names the same meta leader.
   * A port taken by someone else between the search and the start makes a server exit; the whole
   * start is then retried with fresh ports (three attempts).
   */
  static async start(options: NatsClusterOptions = {}): Promise<NatsCluster> {
    const count = options.nodes ?? 3;
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const root = mkdtempSync(join(tmpdir(), 'lightning-nats-'));
      const ports = await freePorts(count * 3);
      const nodes: NatsNode[] = Array.from({ length: count }, (_, index) => ({
        index,
        name: `n${index}`,
        clientPort: ports[index * 3]!,
        routePort: ports[index * 3 + 1]!,
        monitorPort: ports[index * 3 + 2]!,
        storeDir: join(root, `n${index}`),
        url: `nats://127.0.0.1:${ports[index * 3]!}`,
        pid: undefined,
        state: 'killed',
      }));
      const cluster = new NatsCluster(
        root,
        nodes,
        options.readyTimeoutMs ?? 60_000,
        options.maxPayloadBytes ?? 1024 * 1024,
      );
      try {
        for (const node of nodes) cluster.#spawn(node);
        await cluster.waitForMetaLeader();
        // A server that lost its port to another process exits; two of three still elect a leader.
        if (nodes.some((node) => node.state !== 'running')) {
          throw new Error(`a nats-server exited at start\n${cluster.#logTails()}`);
        }
        return cluster;
      } catch (error) {
        lastError = error;
        await cluster.close();
      }
    }
    throw lastError;
  }

  /** The client URLs of every node, for `connect({ servers })`. */
  get servers(): string[] {
    return this.nodes.map((node) => node.url);
  }

  /** The server's log so far (its last 64 KiB), for a failure message. */
  logOf(index: number): string {
    return this.#logs.get(index) ?? '';
  }

  /** SIGKILL: the server dies at once, with no chance to tell its peers. Resolves once it has exited. */
  async kill(index: number): Promise<void> {
    this.#node(index);
    const running = this.#processes.get(index);
    if (running === undefined) return;
    process.kill(running.child.pid!, 'SIGKILL');
    await running.exited;
  }

  /** SIGSTOP: the server freezes (its sockets stay open, it answers nothing) until resume(). */
  stop(index: number): void {
    const node = this.#node(index);
    if (node.state !== 'running') throw new Error(`node ${index} is ${node.state}, not running`);
    process.kill(node.pid!, 'SIGSTOP');
    node.state = 'stopped';
  }

  /** SIGCONT after stop(). */
  resume(index: number): void {
    const node = this.#node(index);
    if (node.state !== 'stopped') throw new Error(`node ${index} is ${node.state}, not stopped`);
    process.kill(node.pid!, 'SIGCONT');
    node.state = 'running';
  }

  /**
   * Starts a killed node again with the same name, ports and store folder, and waits until it names
   * the same meta leader as the others (it has rejoined the cluster).
   */
  async restart(index: number): Promise<void> {
    const node = this.#node(index);
    if (node.state !== 'killed') await this.kill(index);
    this.#spawn(node);
    await this.waitForMetaLeader();
  }

  /** Waits until every running node names the same, non-empty meta leader; returns its index. */
  async waitForMetaLeader(timeoutMs = this.#readyTimeoutMs): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let seen = 'no answer yet';
    while (Date.now() < deadline) {
      const running = this.nodes.filter((node) => node.state === 'running');
      const answers = await Promise.all(running.map((node) => this.#jsz(node, '')));
      const leaders = answers.map((answer) => answer?.meta_cluster?.leader ?? '');
      seen = running.map((node, i) => `${node.name}: ${leaders[i] || '-'}`).join(', ');
      if (leaders.length > 0 && leaders.every((leader) => leader !== '' && leader === leaders[0])) {
        const leader = this.nodes.find((node) => node.name === leaders[0]);
        if (leader !== undefined) return leader.index;
      }
      this.#throwIfAllDead();
      await sleep(pollMs);
    }
    throw new Error(`no JetStream meta leader agreed within ${timeoutMs} ms (${seen})\n${this.#logTails()}`);
  }

  /**
   * The index of the node that leads `stream`: asked of every running node's monitoring endpoint,
   * and believed only from the node that names itself (a follower may still name a dead leader).
   * Waits (up to `timeoutMs`) while the stream has no leader, as after its leader died.
   */
  async streamLeader(stream: string, timeoutMs = this.#readyTimeoutMs): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const running = this.nodes.filter((node) => node.state === 'running');
      const answers = await Promise.all(
        running.map((node) => this.#jsz(node, '?accounts=true&streams=true')),
      );
      for (let i = 0; i < running.length; i++) {
        const details = answers[i]?.account_details ?? [];
        for (const account of details) {
          const found = account.stream_detail?.find((detail) => detail.name === stream);
          if (found?.cluster?.leader === running[i]!.name) return running[i]!.index;
        }
      }
      this.#throwIfAllDead();
      await sleep(pollMs);
    }
    throw new Error(`no node leads stream ${stream} after ${timeoutMs} ms`);
  }

  /**
   * The indexes of the nodes that lead at least one consumer of `stream` (each node believed only
   * about itself), waiting until there is one: how a test finds the server a reader depends on.
   */
  async consumerLeaders(stream: string, timeoutMs = this.#readyTimeoutMs): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const running = this.nodes.filter((node) => node.state === 'running');
      const answers = await Promise.all(
        running.map((node) => this.#jsz(node, '?accounts=true&streams=true&consumers=true')),
      );
      const leaders = running.filter((node, i) =>
        (answers[i]?.account_details ?? []).some((account) =>
          account.stream_detail
            ?.find((detail) => detail.name === stream)
            ?.consumer_detail?.some((consumer) => consumer.cluster?.leader === node.name),
        ),
      );
      if (leaders.length > 0) return leaders.map((node) => node.index);
      this.#throwIfAllDead();
      await sleep(pollMs);
    }
    throw new Error(`no node leads a consumer of stream ${stream} after ${timeoutMs} ms`);
  }

  /**
   * The last sequence of `stream` in the named node's own copy (undefined if the node does not answer
   * or has no copy yet): how a test sees a restarted node catch up.
   */
  async streamLastSequenceOn(index: number, stream: string): Promise<number | undefined> {
    const answer = await this.#jsz(this.#node(index), '?accounts=true&streams=true');
    for (const account of answer?.account_details ?? []) {
      const found = account.stream_detail?.find((detail) => detail.name === stream);
      if (found?.state !== undefined) return found.state.last_seq;
    }
    return undefined;
  }

  /** Kills every server (SIGKILL works on stopped ones too) and removes the store folders. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.nodes.map((node) => this.kill(node.index)));
    rmSync(this.root, { recursive: true, force: true });
  }

  #node(index: number): NatsNode {
    const node = this.nodes[index];
    if (node === undefined) throw new Error(`no node ${index} (the cluster has ${this.nodes.length})`);
    return node;
  }

  #spawn(node: NatsNode): void {
    if (this.#closed) throw new Error('the cluster is closed');
    mkdirSync(node.storeDir, { recursive: true });
    const configPath = join(this.root, `${node.name}.conf`);
    writeFileSync(configPath, this.#config(node));
    const command = ['nats-server', '-c', configPath];
    const child = hasSetpriv
      ? spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...command], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    const appendLog = (text: string): void => {
      this.#logs.set(node.index, ((this.#logs.get(node.index) ?? '') + text).slice(-logBytesMax));
    };
    const entry: NodeProcess = {
      child,
      exited: new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          appendLog(`[exited: code ${code}, signal ${signal}]\n`);
          resolve();
        });
        child.once('error', (error) => {
          appendLog(`[spawn failed: ${error.message}]\n`);
          resolve();
        });
      }),
    };
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', appendLog);
    liveChildren.add(child);
    void entry.exited.then(() => {
      liveChildren.delete(child);
      if (this.#processes.get(node.index) === entry) {
        this.#processes.delete(node.index);
        node.pid = undefined;
        node.state = 'killed';
      }
    });
    this.#processes.set(node.index, entry);
    node.pid = child.pid;
    node.state = 'running';
  }

  /** The server's configuration: loopback only, routes to every other node, its own store folder. */
  #config(node: NatsNode): string {
    const routes = this.nodes
      .filter((other) => other !== node)
      .map((other) => JSON.stringify(`nats-route://127.0.0.1:${other.routePort}`));
    return [
      `server_name: ${JSON.stringify(node.name)}`,
      `listen: "127.0.0.1:${node.clientPort}"`,
      `http: "127.0.0.1:${node.monitorPort}"`,
      `max_payload: ${this.#maxPayloadBytes}`,
      'jetstream {',
      `  store_dir: ${JSON.stringify(node.storeDir)}`,
      '  max_memory_store: 64MB',
      '  max_file_store: 1GB',
      '}',
      'cluster {',
      '  name: "lightning-test"',
      `  listen: "127.0.0.1:${node.routePort}"`,
      `  routes: [${routes.join(', ')}]`,
      '}',
      '',
    ].join('\n');
  }

  /** One monitoring /jsz request, or undefined when the node does not answer in time. */
  async #jsz(node: NatsNode, query: string): Promise<JszResponse | undefined> {
    try {
      const response = await fetch(`http://127.0.0.1:${node.monitorPort}/jsz${query}`, {
        signal: AbortSignal.timeout(monitorRequestMs),
      });
      if (!response.ok) return undefined;
      return (await response.json()) as JszResponse;
    } catch {
      return undefined;
    }
  }

  #throwIfAllDead(): void {
    if (this.nodes.every((node) => node.state === 'killed')) {
      throw new Error(`every nats-server exited\n${this.#logTails()}`);
    }
  }

  #logTails(): string {
    return this.nodes
      .map((node) => `--- ${node.name} (${node.state}) ---\n${this.logOf(node.index).slice(-2_000)}`)
      .join('\n');
  }
}
