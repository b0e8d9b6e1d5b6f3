namespace Loop.Bench;

using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Data.Sqlite;

/// <summary>
/// (c) Accepted messages per second into the store across 100 channels through the HTTP API:
/// wrk posts to POST /api/channels/{id}/messages round-robin over the channels, each 202 meaning
/// the message is in the store. Counted again in the database afterwards.
/// </summary>
public static class IngestBench
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken cancellationToken)
    {
        var state = args.Get("state");
        var mode = args.Get("daemon"); // "loop": published loop serve; "instant": this program's serve
        var channelCount = args.Int("channels", 100);
        var connections = args.Int("connections", 50);
        var seconds = args.Int("seconds", 10);
        var script = args.Get("script");
        var id = args.Get("id", "c");
        var home = Path.Combine(state, $"{id}-home");
        var command = mode switch
        {
            // The engine socket does not exist: every run fails at once ("engine unreachable"),
            // after the actor has taken the messages, made the run and stored its error reply.
            "loop" => DaemonCommand.LoopServe(args.Get("loop-bin"), home, new Dictionary<string, string>
            {
                ["DOCKER_HOST"] = "unix://" + Path.Combine(state, "no-docker-engine.sock"),
                // This measures ingestion; the per-IP limit (120/min by default) would measure itself.
                ["LOOP_API_RATE_LIMIT_PER_MINUTE"] = "0",
            }),
            "instant" => DaemonCommand.BenchServe(home),
            _ => throw new BenchFailure("--daemon must be loop or instant"),
        };

        await using var daemon = command.Start(Path.Combine(state, $"{id}-daemon.log"));
        await daemon.WaitHealthyAsync(TimeSpan.FromSeconds(30), cancellationToken);

        // The API needs a token: the daemon's own local machine token, as `loop` commands use it.
        var token = (await File.ReadAllTextAsync(Path.Combine(home, "secrets", "local-token"), cancellationToken)).Trim();
        using var http = new HttpClient { BaseAddress = daemon.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        var ids = new List<string>();
        for (var i = 0; i < channelCount; i++)
        {
            using var response = await http.PostAsJsonAsync("/api/channels", new { name = $"bench-{i}" }, cancellationToken);
            response.EnsureSuccessStatusCode();
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            ids.Add(body.RootElement.GetProperty("id").GetString()!);
        }
        var idsFile = Path.Combine(state, $"{id}-channels.txt");
        await File.WriteAllLinesAsync(idsFile, ids, cancellationToken);
        var wrkEnvironment = new Dictionary<string, string> { ["CHANNELS"] = idsFile, ["TOKEN"] = token };
        var url = new Uri(daemon.BaseUri, "/");
        var database = Path.Combine(home, "loop.db");

        await Wrk.RunAsync(url, 2, connections, 3, script, wrkEnvironment, cancellationToken);
        var before = Count(database);
        var result = await Wrk.RunAsync(url, 2, connections, seconds, script, wrkEnvironment, cancellationToken);
        var after = Count(database);
        var stored = after.UserMessages - before.UserMessages;
        var storedPerSecond = stored / result.Seconds;
        Console.Error.WriteLine($"[bench {id}] {command.Name}: {result.RequestsPerSecond:0} req/s, {stored} stored, non-2xx {result.Non2xx}, p99 {result.P99Ms:0.00} ms, runs {after.Runs - before.Runs}");
        // The store may hold a few more than wrk counted: requests in flight when wrk stops are stored but not counted.
        if (result.Non2xx > 0 || stored < result.Requests)
        {
            Console.Error.WriteLine($"[bench {id}] warning: wrk counted {result.Requests} responses ({result.Non2xx} non-2xx) but the store gained {stored} user messages");
        }

        var runner = mode == "loop"
            ? "the published `loop serve` (runner docker with DOCKER_HOST pointing at a socket that does not exist, so each run fails fast with 'engine unreachable' after the actor took its messages, created the run and stored the error reply)"
            : "Loop's API (LoopHost, the code `loop serve` runs) and its node with the no-Docker InstantSandbox, hosted by `Loop.Bench serve` (each run succeeds at once and stores its reply)";
        var rows = new List<ResultRow>
        {
            new(id, $"accepted messages/s, 100 channels, wrk -t2 -c{connections} ({(mode == "loop" ? "loop serve, runs fail fast" : "no-Docker sandbox")})", Stats.Num(storedPerSecond), "-", "-", "≥ 2,000/s", BenchResult.Verdict(storedPerSecond >= 2000 && result.Non2xx == 0)),
            new(id, "POST latency p50 / p99 under that load", $"{Stats.Ms(result.P50Ms)} / {Stats.Ms(result.P99Ms)}", "-", "-", "(info)", "-"),
        };
        var notes = new List<string>
        {
            $"({id}) server: {runner}; fresh LOOP_HOME with the SQLite store, log_level debug (the default). {channelCount} channels made through POST /api/channels, then `wrk -t2 -c{connections} -d{seconds}s -s bench/baseline/post-message.lua` POSTs {{\"author\",\"content\"}} round-robin over them after an untimed 3 s warm-up; wrk and the server share the 2 cores.",
            $"({id}) messages/s = user messages the store gained during the measured run (read from loop.db) / wrk's duration: {stored} stored, wrk saw {result.Requests} responses, non-2xx {result.Non2xx}, socket errors {result.SocketErrors}, {after.Runs - before.Runs} runs made meanwhile (messages arriving during a run merge into the next).",
        };
        new BenchResult(id, "message ingest through the HTTP API", rows, notes).Save(args.Get("out"));
        return 0;
    }

    private static (long UserMessages, long Runs) Count(string database)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT (SELECT COUNT(*) FROM messages WHERE role = 'user'), (SELECT COUNT(*) FROM runs)";
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }
}
