namespace Loop.Bench;

using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Npgsql;

/// <summary>
/// (j) A cluster of published <c>loop serve</c> processes on this machine sharing one database of a
/// private PostgreSQL server (<see cref="PgServer"/>), each part with its baseline in the same run:
/// <c>--part failover</c> (j1: kill -9 of the node holding a channel → that channel's next reply),
/// <c>ingest</c> (j2: accepted messages/s through 1 vs 3 nodes), <c>lateness</c> (j3: task fire
/// lateness with 10,000 once tasks over a minute, 3 nodes vs 1) and <c>startup</c> (j4: a node
/// joining a running cluster vs the first node on an empty database vs single-node SQLite).
/// </summary>
public static partial class ClusterBench
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken cancellationToken)
    {
        var part = args.Get("part");
        var id = args.Get("id", part switch { "failover" => "j1", "ingest" => "j2", "lateness" => "j3", "startup" => "j4", _ => "j" });
        var state = Directory.CreateDirectory(Path.Combine(args.Get("state"), id)).FullName;
        var load = Load();
        await using var server = await PgServer.StartAsync(cancellationToken);
        Console.Error.WriteLine($"[bench {id}] PostgreSQL on 127.0.0.1:{server.Port} ({server.LogPath})");
        var result = part switch
        {
            "failover" => await FailoverAsync(args, id, state, server, cancellationToken),
            "ingest" => await IngestAsync(args, id, state, server, cancellationToken),
            "lateness" => await LatenessAsync(args, id, state, server, cancellationToken),
            "startup" => await StartupAsync(args, id, state, server, cancellationToken),
            _ => throw new BenchFailure("--part must be failover, ingest, lateness or startup"),
        };
        var notes = result.Notes.Append($"({id}) load average (1, 5, 15 min) before this step: {load}; after: {Load()}. PostgreSQL {PostgresVersion()} (Debian's), private to the step: a fresh cluster on 127.0.0.1, fsync and synchronous_commit off, max_connections 300; it shares the 2 cores with the nodes and the load generator.").ToList();
        (result with { Notes = notes }).Save(args.Get("out"));
        return 0;
    }

    // ---- j1: failover ---------------------------------------------------------------------------

    private static async Task<BenchResult> FailoverAsync(BenchArgs args, string id, string state, PgServer server, CancellationToken cancellationToken)
    {
        var loopBinary = args.Get("loop-bin");
        var claude = Path.GetFullPath(args.Get("claude"));
        var kills = args.Int("kills", 10);
        // The process runner with a shell `claude` (bench/cluster/claude): no Docker needed, a run
        // costs a fork and a few lines of output, and the agent's process lives as long as its node.
        var settings = new Dictionary<string, string>
        {
            ["LOOP_RUNNER"] = "process",
            ["LOOP_CLAUDE_BIN_PATH"] = claude,
        };

        var connectionString = await server.CreateDatabaseAsync("loop_" + id, cancellationToken);
        await using var db = NpgsqlDataSource.Create(connectionString);
        var nodes = new List<ClusterNode>();
        var replies = new List<double>();
        var failovers = new List<double>();
        var detections = new List<double>();
        var rejoins = new List<double>();
        var restarts = new List<double>();
        try
        {
            for (var i = 1; i <= 3; i++)
            {
                var node = ClusterNode.Create(state, $"node-{i}", loopBinary, connectionString, settings);
                nodes.Add(node);
                await node.StartAsync(cancellationToken);
            }
            // A project directory at the same path for every node, as the README asks of a cluster:
            // the agent's mark there tells the run that follows the failover that it is the second.
            var project = Directory.CreateDirectory(Path.Combine(state, "project")).FullName;
            var channel = await nodes[0].CreateChannelAsync("failover", project, cancellationToken);
            await nodes[0].PostMessageAsync(channel, "[[tag warm]]", cancellationToken);
            await WaitReplyAsync(() => PgReplyAsync(db, channel, "answered warm", cancellationToken), TimeSpan.FromSeconds(60), "warm-up", cancellationToken);

            for (var round = 1; round <= kills; round++)
            {
                // Baseline: the same channel answers a message with no node dying.
                var via = nodes[round % nodes.Count];
                var posted = DateTimeOffset.UtcNow;
                await via.PostMessageAsync(channel, $"[[tag b{round}]]", cancellationToken);
                var answered = await WaitReplyAsync(() => PgReplyAsync(db, channel, $"answered b{round}", cancellationToken), TimeSpan.FromSeconds(60), $"baseline {round}", cancellationToken);
                replies.Add((answered - posted).TotalMilliseconds);

                // Failover: a message whose agent is at work when its node dies.
                await via.PostMessageAsync(channel, $"[[hold k{round}]]", cancellationToken);
                var holder = await HolderAsync(nodes, Path.Combine(project, $"k{round}.held"), cancellationToken);
                var killed = DateTimeOffset.UtcNow;
                await holder.KillAsync();
                answered = await WaitReplyAsync(() => PgReplyAsync(db, channel, $"answered k{round}", cancellationToken), TimeSpan.FromSeconds(120), $"failover {round}", cancellationToken);
                failovers.Add((answered - killed).TotalMilliseconds);
                if (await InterruptedAtAsync(db, channel, $"[[hold k{round}]]", cancellationToken) is { } reported)
                {
                    detections.Add((reported - killed).TotalMilliseconds);
                }
                Console.Error.WriteLine($"[bench {id}] round {round}: reply {replies[^1]:0} ms; {holder.Name} killed, answered {failovers[^1]:0} ms later (interrupted run reported after {(detections.Count == round ? detections[^1].ToString("0", CultureInfo.InvariantCulture) : "?")} ms)");

                // Back into the cluster on its home, as a service manager would restart it.
                rejoins.Add(await holder.StartAsync(cancellationToken));
            }
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }

        // Baseline 2: one node on SQLite, killed and restarted at once on its home.
        var single = ClusterNode.Create(state, "single", loopBinary, null, settings);
        try
        {
            await single.StartAsync(cancellationToken);
            var project = Directory.CreateDirectory(Path.Combine(state, "single-project")).FullName;
            var channel = await single.CreateChannelAsync("restart", project, cancellationToken);
            var database = Path.Combine(single.Home, "loop.db");
            await single.PostMessageAsync(channel, "[[tag warm]]", cancellationToken);
            await WaitReplyAsync(() => Task.FromResult(SqliteReply(database, channel, "answered warm")), TimeSpan.FromSeconds(60), "warm-up", cancellationToken);
            for (var round = 1; round <= kills; round++)
            {
                await single.PostMessageAsync(channel, $"[[hold s{round}]]", cancellationToken);
                await HolderAsync([single], Path.Combine(project, $"s{round}.held"), cancellationToken);
                var killed = DateTimeOffset.UtcNow;
                await single.KillAsync();
                await single.StartAsync(cancellationToken);
                var answered = await WaitReplyAsync(() => Task.FromResult(SqliteReply(database, channel, $"answered s{round}")), TimeSpan.FromSeconds(60), $"restart {round}", cancellationToken);
                restarts.Add((answered - killed).TotalMilliseconds);
                Console.Error.WriteLine($"[bench {id}] single node round {round}: killed and restarted, answered {restarts[^1]:0} ms later");
            }
        }
        finally
        {
            await single.DisposeAsync();
        }

        var failover = Stats.Of(failovers);
        var reply = Stats.Of(replies);
        var restart = Stats.Of(restarts);
        var rows = new List<ResultRow>
        {
            new(id, $"kill -9 of the node holding a channel → its reply, 3 nodes, {kills} kills, p50 / p99 (baseline: reply with no kill)",
                $"{Stats.Ms(failover.P50)} / {Stats.Ms(failover.P99)}", $"{Stats.Ms(reply.P50)} / {Stats.Ms(reply.P99)}",
                Stats.Num(failover.P99 / reply.P99, "0"), "p99 ≤ 5 s", BenchResult.Verdict(failover.P99 <= 5000)),
            new(id, $"single node on SQLite: kill -9, restart at once → the reply, p50 / p99 of {kills}",
                $"{Stats.Ms(restart.P50)} / {Stats.Ms(restart.P99)}", "-", "-", "(baseline)", "-"),
            new(id, "kill → interrupted run reported by a survivor (the node declared dead), p50 / max",
                detections.Count > 0 ? $"{Stats.Ms(Stats.Of(detections).P50)} / {Stats.Ms(Stats.Of(detections).Max)}" : "-", "-", "-", "(info)", "-"),
            new(id, $"killed node restarted on its home: start → first 200 /api/health, median of {rejoins.Count}",
                Stats.Ms(Stats.Median(rejoins)), "-", "-", "(info)", "-"),
        };
        var notes = new List<string>
        {
            $"({id}) 3 published `loop serve` nodes (silo.json with a postgres store, LOOP_POSTGRES, own home, silo port and API port), runner `process` with bench/cluster/claude (a shell script: no Docker, a run costs a fork), log_level at its default. One channel with a project directory at the same path for all nodes. Each of {kills} rounds: (baseline) `[[tag bN]]` posted through one node, timed from just before the POST to the agent reply's created_at in the store; then `[[hold kN]]` posted: its agent writes a mark holding its parent's pid (the node running it) and waits as long as that node lives; once the mark is there the bench sends SIGKILL to that node, and times from just before the kill to the created_at of the reply `answered kN` that the run after the failover stores (the second attempt finds the mark and answers at once). The killed node is then restarted on its home (its start → first 200 is the rejoin row) before the next round.",
            $"({id}) What a failover waits for: Orleans' membership declares the node dead (probes every 1.5 s, two missed, one vote), a survivor reports the interrupted run failed and queues its messages again, the channel is activated on a survivor and runs them. Samples (ms): failover {string.Join(", ", failovers.Select(f => Stats.Num(f)))}; interrupted run reported {string.Join(", ", detections.Select(f => Stats.Num(f)))}; no-kill replies {string.Join(", ", replies.Select(f => Stats.Num(f)))}.",
            $"({id}) single-node baseline: `loop serve` on SQLite (no silo.json), the same runner and script; `[[hold sN]]` posted, SIGKILL once its agent is at work, restarted at once on the same home (as systemd's Restart=always with no delay would), timed from the kill to the reply's created_at in loop.db: the restart reports the interrupted run and runs its message again. Samples (ms): {string.Join(", ", restarts.Select(f => Stats.Num(f)))}.",
        };
        return new BenchResult(id, "cluster failover", rows, notes);
    }

    /// <summary>The node whose agent wrote <paramref name="mark"/> (its parent's pid: the node running it).</summary>
    private static async Task<ClusterNode> HolderAsync(IReadOnlyList<ClusterNode> nodes, string mark, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!File.Exists(mark))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new BenchFailure($"no agent began the held run within 60 s (no {mark})");
            }
            await Task.Delay(10, cancellationToken);
        }
        var pid = int.Parse((await File.ReadAllTextAsync(mark, cancellationToken)).Trim(), CultureInfo.InvariantCulture);
        return nodes.FirstOrDefault(n => n.Process?.Pid == pid) ?? throw new BenchFailure($"{mark} names pid {pid}, which is none of the nodes");
    }

    /// <summary>Polls every 10 ms until <paramref name="read"/> finds the reply; returns its created_at.</summary>
    private static async Task<DateTimeOffset> WaitReplyAsync(Func<Task<DateTimeOffset?>> read, TimeSpan within, string what, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            try
            {
                if (await read() is { } at)
                {
                    return at;
                }
            }
            catch (SqliteException)
            {
                // loop.db is being created or migrated by the restart
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new BenchFailure($"{what}: no reply within {within.TotalSeconds} s");
            }
            await Task.Delay(10, cancellationToken);
        }
    }

    private static async Task<DateTimeOffset?> PgReplyAsync(NpgsqlDataSource db, string channel, string text, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand("SELECT min(created_at) FROM messages WHERE channel_id = $1 AND role = 'agent' AND content = $2");
        command.Parameters.Add(new NpgsqlParameter { Value = channel });
        command.Parameters.Add(new NpgsqlParameter { Value = text });
        return await command.ExecuteScalarAsync(cancellationToken) is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
    }

    /// <summary>When the first run of the held message was reported failed (a survivor took over).</summary>
    private static async Task<DateTimeOffset?> InterruptedAtAsync(NpgsqlDataSource db, string channel, string prompt, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand("SELECT min(finished_at) FROM runs WHERE channel_id = $1 AND status = 'failed' AND strpos(prompt, $2) > 0");
        command.Parameters.Add(new NpgsqlParameter { Value = channel });
        command.Parameters.Add(new NpgsqlParameter { Value = prompt });
        return await command.ExecuteScalarAsync(cancellationToken) is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
    }

    private static DateTimeOffset? SqliteReply(string database, string channel, string text)
    {
        if (!File.Exists(database))
        {
            return null;
        }
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT min(created_at) FROM messages WHERE channel_id = @channel AND role = 'agent' AND content = @text";
        command.Parameters.AddWithValue("@channel", channel);
        command.Parameters.AddWithValue("@text", text);
        return command.ExecuteScalar() is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
    }

    // ---- j2: accepted messages/s, 1 vs 3 nodes ---------------------------------------------------

    private static async Task<BenchResult> IngestAsync(BenchArgs args, string id, string state, PgServer server, CancellationToken cancellationToken)
    {
        var channelCount = args.Int("channels", 100);
        var connections = args.Int("connections", 48);
        var seconds = args.Int("seconds", 10);
        var one = await IngestOnceAsync(args, id, state, server, 1, channelCount, connections, seconds, cancellationToken);
        var three = await IngestOnceAsync(args, id, state, server, 3, channelCount, connections, seconds, cancellationToken);
        var rows = new List<ResultRow>
        {
            new(id, $"accepted messages/s, {channelCount} channels, 3 × wrk -t1 -c{connections / 3}: spread over 3 nodes (baseline: all to 1 node)",
                Stats.Num(three.PerSecond), Stats.Num(one.PerSecond), Stats.Num(three.PerSecond / one.PerSecond, "0.00"), "(info: 3 vs 1 node)", "-"),
            new(id, "POST latency p50 / p99 (worst of the wrk processes)", $"{Stats.Ms(three.P50Ms)} / {Stats.Ms(three.P99Ms)}", $"{Stats.Ms(one.P50Ms)} / {Stats.Ms(one.P99Ms)}", "-", "(info)", "-"),
        };
        var notes = new List<string>
        {
            $"({id}) published `loop serve` nodes on one PostgreSQL database (a fresh database for each case), runner docker with DOCKER_HOST at a socket that does not exist (as (c): each run fails fast after its node took the messages, created the run and stored the error reply), log_level at its default, API rate limit off. {channelCount} channels made through node-1's API, then three `wrk -t1 -c{connections / 3} -d{seconds}s -s bench/baseline/post-message.lua` at once, each with its node's local token, after an untimed 3 s warm-up the same way: all three against node-1 (baseline), or one per node (the cluster). The load generator is the same in both cases; the 2 cores are shared by it, the nodes and PostgreSQL.",
            $"({id}) messages/s = user messages the database gained during the measured run / the longest wrk duration. 1 node: {one.Stored} stored, wrk saw {one.Requests} responses, non-2xx {one.Non2xx}, {one.Runs} runs meanwhile. 3 nodes: {three.Stored} stored, wrk saw {three.Requests}, non-2xx {three.Non2xx}, {three.Runs} runs meanwhile (per node: {three.PerNode}). Compare (c): one SQLite node, wrk -t2 -c50.",
        };
        return new BenchResult(id, "accepted messages/s through 1 vs 3 nodes", rows, notes);
    }

    private sealed record IngestRun(double PerSecond, long Stored, long Requests, long Non2xx, long Runs, double P50Ms, double P99Ms, string PerNode);

    private static async Task<IngestRun> IngestOnceAsync(BenchArgs args, string id, string state, PgServer server, int nodeCount, int channelCount, int connections, int seconds, CancellationToken cancellationToken)
    {
        var connectionString = await server.CreateDatabaseAsync($"loop_{id}_{nodeCount}", cancellationToken);
        var directory = Directory.CreateDirectory(Path.Combine(state, $"{nodeCount}-nodes")).FullName;
        var settings = new Dictionary<string, string> { ["DOCKER_HOST"] = NoEngine(state) };
        var nodes = new List<ClusterNode>();
        try
        {
            for (var i = 1; i <= nodeCount; i++)
            {
                var node = ClusterNode.Create(directory, $"node-{i}", args.Get("loop-bin"), connectionString, settings);
                nodes.Add(node);
                await node.StartAsync(cancellationToken);
            }
            var ids = new List<string>();
            for (var i = 0; i < channelCount; i++)
            {
                ids.Add(await nodes[0].CreateChannelAsync($"bench-{i}", null, cancellationToken));
            }
            var idsFile = Path.Combine(directory, "channels.txt");
            await File.WriteAllLinesAsync(idsFile, ids, cancellationToken);
            var targets = Enumerable.Range(0, 3).Select(i => nodes[i % nodeCount]).ToList();
            var script = args.Get("script");
            Task<WrkResult[]> LoadAsync(int duration) => Task.WhenAll(targets.Select(async node =>
            {
                var token = node.Http.DefaultRequestHeaders.Authorization!.Parameter!;
                return await Wrk.RunAsync(new Uri(node.Process!.BaseUri, "/"), 1, connections / 3, duration, script,
                    new Dictionary<string, string> { ["CHANNELS"] = idsFile, ["TOKEN"] = token }, cancellationToken);
            }));

            await using var db = NpgsqlDataSource.Create(connectionString);
            await LoadAsync(3);
            var before = await CountAsync(db, cancellationToken);
            var results = await LoadAsync(seconds);
            var after = await CountAsync(db, cancellationToken);
            var stored = after.UserMessages - before.UserMessages;
            var perSecond = stored / results.Max(r => r.Seconds);
            await using var perNode = db.CreateCommand("SELECT coalesce(split_part(node, '@', 1), '?'), count(*) FROM runs GROUP BY 1 ORDER BY 1");
            var split = new List<string>();
            await using (var reader = await perNode.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    split.Add($"{reader.GetString(0)} {reader.GetInt64(1)} runs");
                }
            }
            Console.Error.WriteLine($"[bench {id}] {nodeCount} node(s): {perSecond:0} accepted/s ({stored} stored, {results.Sum(r => r.Requests)} responses, non-2xx {results.Sum(r => r.Non2xx)}); {string.Join(", ", split)}");
            return new IngestRun(perSecond, stored, results.Sum(r => r.Requests), results.Sum(r => r.Non2xx), after.Runs - before.Runs,
                results.Max(r => r.P50Ms), results.Max(r => r.P99Ms), string.Join(", ", split));
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    private static async Task<(long UserMessages, long Runs)> CountAsync(NpgsqlDataSource db, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand("SELECT (SELECT count(*) FROM messages WHERE role = 'user'), (SELECT count(*) FROM runs)");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    // ---- j3: fire lateness, 10,000 once tasks over a minute, 3 nodes vs 1 -----------------------

    private static async Task<BenchResult> LatenessAsync(BenchArgs args, string id, string state, PgServer server, CancellationToken cancellationToken)
    {
        if (args.Get("nodes", "") is { Length: > 0 } alone)
        {
            // One case alone, to look into it (BENCH_KEEP_STATE keeps the node logs): no report.
            await LatenessOnceAsync(args, id, state, server, int.Parse(alone, System.Globalization.CultureInfo.InvariantCulture), cancellationToken);
            throw new BenchFailure($"--nodes {alone} measures that case alone; its numbers are on stderr");
        }
        var one = await LatenessOnceAsync(args, id, state, server, 1, cancellationToken);
        var three = await LatenessOnceAsync(args, id, state, server, 3, cancellationToken);
        const double target = 20;
        var rows = new List<ResultRow>
        {
            new(id, $"fire lateness (task.fired − due), {three.What}, 3 nodes (baseline 1 node), p50 / p99 / max; events received {three.Fired.Count:N0} / {one.Fired.Count:N0} of {TaskCount(args):N0}",
                Triple(three.Fired), Triple(one.Fired), Stats.Num(three.Fired.P99 / one.Fired.P99, "0.00") + " (p99)", $"p99 < {target} ms", BenchResult.Verdict(three.Fired.P99 < target)),
            new(id, "run start lateness from the store (runs.started_at − due; an upper bound of the above), p50 / p99 / max",
                Triple(three.Started), Triple(one.Started), Stats.Num(three.Started.P99 / one.Started.P99, "0.00") + " (p99)", "(info: bounds the row above)", "-"),
            new(id, "slots due: fired / fired twice / missed / early (runs per task in the store)",
                three.Correctness, one.Correctness, "-", "each once, none early", BenchResult.Verdict(three.Correct && one.Correct)),
            new(id, "slots fired per node (the node of each task.fired event)", three.PerNode, one.PerNode, "-", "(info)", "-"),
            new(id, "tasks created through POST /api/tasks (6 at a time, spread over the nodes)", $"{Stats.Num(three.CreatedPerSecond)}/s", $"{Stats.Num(one.CreatedPerSecond)}/s",
                Stats.Num(three.CreatedPerSecond / one.CreatedPerSecond, "0.00"), "(info)", "-"),
        };
        var notes = new List<string>
        {
            $"({id}) {three.What} ({TaskCount(args):N0} once tasks at ISO instants to the millisecond, on {args.Int("channels", 100)} channels made through node-1), created through POST /api/tasks of the nodes in turn, 6 requests at a time, ending {Stats.Num(three.AheadSeconds, "0.0")} s (3 nodes) and {Stats.Num(one.AheadSeconds, "0.0")} s (1 node) before the first instant. Published `loop serve` nodes on one PostgreSQL database (fresh for each case), runner docker with DOCKER_HOST at a missing socket (a fired run fails at once, as (c)'s; the outcome of a run does not change when it fires), log_level at its default. 1 node first, then 3, in the same run. A task is armed on the node its grain lives on (a restarted node arms them all; the claim in the store lets one node fire each slot). The claimer's timers ring on a thread of their own (PunctualClock).",
            $"({id}) fire lateness = `at` of the node's `task.fired` event minus the slot's due instant, the same instant f2 reads in-process from TaskClaimer.OnFired (the later of the claim's commit and the timer's wake-up at the instant). Across processes it is read from the events every node sends through PostgreSQL (NOTIFY on loop_events, what feeds the dashboard of the other nodes): the bench LISTENs on the database. Events: 3 nodes {three.Fired.Count:N0}, 1 node {one.Fired.Count:N0} of {TaskCount(args):N0} slots.",
            $"({id}) from the store alone (runs and tasks tables): the store does not record when a slot fired. A claim writes tasks.last_run_at = the claimer's clock when it began the claim transaction and inserts the run with created_at = max(due, that instant) (queued for its instant); runs.started_at is when the channel took the run (after the wake-up at the instant, reading the channel's work, the runner slot and the store's start write). So started_at − due bounds the fire lateness from above. Claims that began before their instant (last_run_at < due): 3 nodes {three.ClaimLead.Count:N0} (p50 {Stats.Num(three.ClaimLead.P50)} ms ahead, the least {Stats.Num(three.ClaimLeadMin)} ms), 1 node {one.ClaimLead.Count:N0} (p50 {Stats.Num(one.ClaimLead.P50)} ms ahead, the least {Stats.Num(one.ClaimLeadMin)} ms); claims that began after their instant: 3 nodes {three.ClaimLate.Count:N0} (p99 {Stats.Ms(three.ClaimLate.P99)} late), 1 node {one.ClaimLate.Count:N0} (p99 {Stats.Ms(one.ClaimLate.P99)}).",
            $"({id}) correctness, counted in the database after every run of the window had ended: exactly one run per task, none created before its due instant (created_at < due is 'early'). Runs unfinished at the end: 3 nodes {three.Unfinished}, 1 node {one.Unfinished}. Compare f2: the same 10,000 once tasks over 60 s on one in-process node with SQLite.",
        };
        return new BenchResult(id, "fire lateness on a cluster", rows, notes);
    }

    private static int TaskCount(BenchArgs args) => args.Int("tasks", 10_000);

    private static string Triple(Stats stats) => $"{Stats.Ms(stats.P50)} / {Stats.Ms(stats.P99)} / {Stats.Ms(stats.Max)}";

    private sealed record LatenessRun(string What, Stats Fired, Stats Started, Stats ClaimLate, Stats ClaimLead, double ClaimLeadMin, string Correctness, bool Correct, string PerNode, long Unfinished, double AheadSeconds, double CreatedPerSecond);

    private static async Task<LatenessRun> LatenessOnceAsync(BenchArgs args, string id, string state, PgServer server, int nodeCount, CancellationToken cancellationToken)
    {
        var connectionString = await server.CreateDatabaseAsync($"loop_{id}_{nodeCount}", cancellationToken);
        var directory = Directory.CreateDirectory(Path.Combine(state, $"{nodeCount}-nodes")).FullName;
        var settings = new Dictionary<string, string> { ["DOCKER_HOST"] = NoEngine(state) };
        var nodes = new List<ClusterNode>();
        await using var db = NpgsqlDataSource.Create(connectionString);
        try
        {
            for (var i = 1; i <= nodeCount; i++)
            {
                var node = ClusterNode.Create(directory, $"node-{i}", args.Get("loop-bin"), connectionString, settings);
                nodes.Add(node);
                await node.StartAsync(cancellationToken);
            }
            var plan = new TaskPlan(TaskPlan.NextWholeSecond(DateTimeOffset.UtcNow + TimeSpan.FromSeconds(args.Int("lead", 120))),
                args.Int("window", 60), TaskCount(args), args.Int("channels", 100), "once");
            var channels = new List<string>();
            for (var c = 0; c < plan.Channels; c++)
            {
                channels.Add(await nodes[0].CreateChannelAsync($"bench-{c}", null, cancellationToken));
            }

            // Listening before any task exists: claims begin 2 s before the first instant.
            var fired = new List<(int Task, DateTimeOffset Due, DateTimeOffset At, string Node)>();
            using var listening = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var listener = await ListenAsync(connectionString, plan, fired, listening.Token);

            var creating = Stopwatch.GetTimestamp();
            await Parallel.ForEachAsync(Enumerable.Range(0, plan.Tasks), new ParallelOptions { MaxDegreeOfParallelism = 6, CancellationToken = cancellationToken }, async (i, ct) =>
            {
                using var response = await nodes[i % nodeCount].Http.PostAsJsonAsync("/api/tasks", new
                {
                    channel_id = channels[i % channels.Count],
                    type = "once",
                    schedule = plan.Schedule(i),
                    prompt = $"bench task {i}: say ok",
                    name = $"bench-{i}",
                }, ct);
                await ClusterNode.IdOfAsync(response, $"POST /api/tasks bench-{i}", ct);
            });
            var createdPerSecond = plan.Tasks / Stopwatch.GetElapsedTime(creating).TotalSeconds;
            var ahead = (plan.Start - DateTimeOffset.UtcNow).TotalSeconds;
            Console.Error.WriteLine($"[bench {id}] {nodeCount} node(s): {plan.Tasks} tasks created in {Stopwatch.GetElapsedTime(creating).TotalSeconds:0.0} s, first due in {ahead:0.0} s");
            plan.EnsureAhead(TimeSpan.FromSeconds(3), "task creation through the API");

            var end = plan.Start + TimeSpan.FromSeconds(plan.WindowSeconds);
            await Task.Delay(end - DateTimeOffset.UtcNow + TimeSpan.FromSeconds(1), cancellationToken);
            var deadline = DateTime.UtcNow.AddSeconds(60);
            long unfinished;
            while (((unfinished = await UnfinishedAsync(db, cancellationToken)) > 0 || FiredCount(fired) < plan.Tasks) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(250, cancellationToken);
            }
            // Events still on their way from the nodes' relays.
            await Task.Delay(1000, cancellationToken);
            await listening.CancelAsync();
            await listener;

            List<(int Task, DateTimeOffset Due, DateTimeOffset At, string Node)> events;
            lock (fired)
            {
                events = fired.ToList();
            }
            var firedLate = events.Select(e => (e.At - e.Due).TotalMilliseconds).ToList();
            var rows = await RunsPerTaskAsync(db, cancellationToken);
            int once = 0, twice = 0, missed = 0, early = 0;
            var startedLate = new List<double>();
            var claimLate = new List<double>();
            var claimLead = new List<double>();
            for (var i = 0; i < plan.Tasks; i++)
            {
                if (!rows.TryGetValue(i, out var row))
                {
                    throw new BenchFailure($"task bench-{i} is not in the store");
                }
                var dueMs = plan.Due(i).ToUnixTimeMilliseconds();
                once += row.Runs == 1 ? 1 : 0;
                twice += row.Runs > 1 ? 1 : 0;
                missed += row.Runs == 0 ? 1 : 0;
                early += row.FirstCreated < dueMs ? 1 : 0;
                if (row.FirstStarted is { } started)
                {
                    startedLate.Add(started - dueMs);
                }
                if (row.LastRun is { } claimed)
                {
                    if (claimed < dueMs)
                    {
                        claimLead.Add(dueMs - claimed);
                    }
                    else
                    {
                        claimLate.Add(claimed - dueMs);
                    }
                }
            }
            var perNode = string.Join(", ", events.GroupBy(e => e.Node).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count():N0}"));
            var firedStats = Stats.Of(firedLate);
            var startedStats = Stats.Of(startedLate);
            Console.Error.WriteLine($"[bench {id}] {nodeCount} node(s): fired {firedStats.Count} p50 {firedStats.P50:0.0} p99 {firedStats.P99:0.0} max {firedStats.Max:0.0} ms; started p50 {startedStats.P50:0.0} p99 {startedStats.P99:0.0} ms; once {once}, twice {twice}, missed {missed}, early {early}; claims begun late {claimLate.Count} (max {(claimLate.Count > 0 ? claimLate.Max() : 0):0} ms); {perNode}");
            return new LatenessRun(
                $"{plan.Tasks:N0} once tasks due evenly over {plan.WindowSeconds:0} s ({Stats.Num(plan.Tasks / plan.WindowSeconds)}/s)",
                firedStats, startedStats, claimLate.Count > 0 ? Stats.Of(claimLate) : new Stats(0, 0, 0, 0, 0, 0), claimLead.Count > 0 ? Stats.Of(claimLead) : new Stats(0, 0, 0, 0, 0, 0), claimLead.Count > 0 ? claimLead.Min() : 0,
                $"{once:N0} of {plan.Tasks:N0} / {twice} / {missed} / {early}", twice == 0 && missed == 0 && early == 0 && once == plan.Tasks,
                perNode, unfinished, ahead, createdPerSecond);
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    private static int FiredCount(List<(int Task, DateTimeOffset Due, DateTimeOffset At, string Node)> fired)
    {
        lock (fired)
        {
            return fired.Count;
        }
    }

    /// <summary>LISTENs on the nodes' event channel and collects each <c>task.fired</c> of the plan's
    /// tasks; the returned task ends when <paramref name="stopping"/> is cancelled.</summary>
    private static async Task<Task> ListenAsync(string connectionString, TaskPlan plan, List<(int Task, DateTimeOffset Due, DateTimeOffset At, string Node)> fired, CancellationToken stopping)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, KeepAlive = 5 }.ConnectionString);
        await connection.OpenAsync(stopping);
        connection.Notification += (_, e) =>
        {
            if (Loop.Runtime.ClusterEventRelay.Decode(e.Payload) is not { Kind: "task.fired" } loopEvent || FiredTask().Match(loopEvent.Text) is not { Success: true } match)
            {
                return;
            }
            var task = TaskPlan.IndexOf(match.Groups[1].Value);
            lock (fired)
            {
                fired.Add((task, plan.Due(task), loopEvent.At, loopEvent.Node ?? "?"));
            }
        };
        await using (var listen = new NpgsqlCommand($"LISTEN {Loop.Runtime.ClusterEventRelay.Channel}", connection))
        {
            await listen.ExecuteNonQueryAsync(stopping);
        }
        return Task.Run(async () =>
        {
            await using (connection)
            {
                try
                {
                    while (true)
                    {
                        await connection.WaitAsync(stopping);
                    }
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                }
            }
        }, CancellationToken.None);
    }

    private static async Task<long> UnfinishedAsync(NpgsqlDataSource db, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand("SELECT count(*) FROM runs WHERE status IN ('queued', 'running')");
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task<Dictionary<int, (int Runs, long? FirstCreated, long? FirstStarted, long? LastRun)>> RunsPerTaskAsync(NpgsqlDataSource db, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand("""
            SELECT t.name, count(r.id), min(r.created_at), min(r.started_at), t.last_run_at
            FROM tasks t LEFT JOIN runs r ON r.task_id = t.id
            WHERE t.name LIKE 'bench-%'
            GROUP BY t.id, t.name, t.last_run_at
            """);
        var rows = new Dictionary<int, (int, long?, long?, long?)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows[TaskPlan.IndexOf(reader.GetString(0))] = ((int)reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetInt64(2),
                reader.IsDBNull(3) ? null : reader.GetInt64(3), reader.IsDBNull(4) ? null : reader.GetInt64(4));
        }
        return rows;
    }

    // ---- j4: start-up of a joining node ----------------------------------------------------------

    private static async Task<BenchResult> StartupAsync(BenchArgs args, string id, string state, PgServer server, CancellationToken cancellationToken)
    {
        var runs = args.Int("runs", 3);
        var settings = new Dictionary<string, string> { ["DOCKER_HOST"] = NoEngine(state) };
        var first = new List<double>();
        var joining = new List<double>();
        var sqlite = new List<double>();
        // Round 0 is a warm-up (page cache), not counted.
        for (var round = 0; round <= runs; round++)
        {
            var connectionString = await server.CreateDatabaseAsync($"loop_{id}_{round}", cancellationToken);
            var directory = Directory.CreateDirectory(Path.Combine(state, $"round-{round}")).FullName;
            var nodes = new List<ClusterNode>();
            var ready = new List<double>();
            try
            {
                for (var i = 1; i <= 3; i++)
                {
                    var node = ClusterNode.Create(directory, $"node-{i}", args.Get("loop-bin"), connectionString, settings);
                    nodes.Add(node);
                    ready.Add(await node.StartAsync(cancellationToken));
                }
            }
            finally
            {
                foreach (var node in Enumerable.Reverse(nodes))
                {
                    await node.DisposeAsync();
                }
            }
            double alone;
            await using (var single = ClusterNode.Create(directory, "single", args.Get("loop-bin"), null, settings))
            {
                alone = await single.StartAsync(cancellationToken);
            }
            Console.Error.WriteLine($"[bench {id}] round {round}{(round == 0 ? " (warm-up)" : "")}: first node {ready[0]:0} ms, joining {ready[1]:0} / {ready[2]:0} ms, single SQLite node {alone:0} ms");
            if (round > 0)
            {
                first.Add(ready[0]);
                joining.AddRange(ready.Skip(1));
                sqlite.Add(alone);
            }
        }
        double j = Stats.Median(joining), f = Stats.Median(first), s = Stats.Median(sqlite);
        var rows = new List<ResultRow>
        {
            new(id, $"node joining a running cluster (2nd and 3rd node): start → first 200 /api/health, median of {joining.Count} (baseline: single node on SQLite)",
                Stats.Ms(j), Stats.Ms(s), Stats.Num(j / s, "0.00"), "(info; (d): ≤ 1.0 s)", "-"),
            new(id, $"first node on an empty PostgreSQL database (migrates it), median of {first.Count} (baseline: single node on SQLite)",
                Stats.Ms(f), Stats.Ms(s), Stats.Num(f / s, "0.00"), "(info)", "-"),
        };
        var notes = new List<string>
        {
            $"({id}) each of {runs} rounds (after one warm-up round): a fresh database; node-1 started on it (the store migrated, the cluster's membership made), then node-2 and node-3 joining while the nodes before them run; all stopped (SIGTERM); then one `loop serve` on SQLite (no silo.json) in a fresh home. Every node: the published binary, a fresh LOOP_HOME, runner docker with DOCKER_HOST at a missing socket (no engine on this machine; (d) uses the real one), log_level at its default. Timed from just before Process.Start to the first 200 of /api/health, polling every 2 ms (DaemonProcess, as (d)).",
            $"({id}) samples (ms): first {string.Join(", ", first.Select(v => Stats.Num(v)))}; joining {string.Join(", ", joining.Select(v => Stats.Num(v)))}; SQLite {string.Join(", ", sqlite.Select(v => Stats.Num(v)))}.",
        };
        return new BenchResult(id, "start-up of cluster nodes", rows, notes);
    }

    /// <summary>A Docker socket that does not exist, in a directory of its own (a project dir may not
    /// lie in the engine socket's directory).</summary>
    private static string NoEngine(string state) => "unix://" + Path.Combine(state, "no-docker", "engine.sock");

    private static string Load() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

    private static string PostgresVersion()
    {
        var installs = "/usr/lib/postgresql";
        return Directory.Exists(installs) ? string.Join(", ", Directory.GetDirectories(installs).Select(Path.GetFileName)) : "?";
    }

    [GeneratedRegex(@"^task (bench-\d+) fired ")]
    private static partial Regex FiredTask();
}
