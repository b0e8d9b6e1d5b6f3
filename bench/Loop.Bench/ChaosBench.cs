namespace Loop.Bench;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;

/// <summary>
/// (i) Crash safety: the published <c>loop serve</c> (real Docker runs of the claude test double)
/// is killed with SIGKILL at random moments while messages arrive on many channels, and restarted
/// each time. Afterwards the store must hold every message the API accepted, each answered exactly
/// once, and every run a kill interrupted reported as such. Reported, not run in CI.
/// </summary>
public static partial class ChaosBench
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken cancellationToken)
    {
        var state = args.Get("state");
        var loopBinary = args.Get("loop-bin");
        var image = args.Get("image");
        var channelCount = args.Int("channels", 20);
        var messageCount = args.Int("messages", 500);
        var killCount = args.Int("kills", 50);
        var random = new Random(args.Int("seed", 7));
        var home = Path.Combine(state, "i-home");
        var log = Path.Combine(state, "i-daemon.log");
        var settings = new Dictionary<string, string>
        {
            ["LOOP_CONTAINER_IMAGE"] = image,
            ["LOOP_API_RATE_LIMIT_PER_MINUTE"] = "0",
        };
        if (Loop.Runtime.UnixOwnership.Current().IsRoot)
        {
            // Agents never run as root; a benchmark run as root says who they run as.
            settings["LOOP_CONTAINER_USER"] = "1000:1000";
        }
        var command = DaemonCommand.LoopServe(loopBinary, home, settings);

        var daemon = await StartAsync(command, log, cancellationToken);
        var restarts = new System.Collections.Concurrent.ConcurrentBag<double>();
        try
        {
            var channels = new List<string>();
            for (var i = 0; i < channelCount; i++)
            {
                using var created = await daemon.Http.PostAsJsonAsync("/api/channels", new { name = $"chaos-{i}" }, cancellationToken);
                created.EnsureSuccessStatusCode();
                using var body = JsonDocument.Parse(await created.Content.ReadAsStringAsync(cancellationToken));
                channels.Add(body.RootElement.GetProperty("id").GetString()!);
            }

            // Kills at random moments, beside the posting, over the time the messages take to arrive
            // and be answered: each lands on whatever is happening then (a POST, a claim, a container
            // starting, a reply).
            var accepted = new HashSet<string>(StringComparer.Ordinal);
            var unacknowledged = new HashSet<string>(StringComparer.Ordinal);
            var posted = 0;
            var killer = Task.Run(async () =>
            {
                var killRandom = new Random(args.Int("seed", 7) + 1);
                for (var kills = 1; kills <= killCount; kills++)
                {
                    await Task.Delay(killRandom.Next(500, 3000), cancellationToken);
                    var old = Volatile.Read(ref daemon);
                    await old.Process.KillAsync();
                    var restart = System.Diagnostics.Stopwatch.StartNew();
                    Volatile.Write(ref daemon, await StartAsync(command, log, cancellationToken));
                    restarts.Add(restart.Elapsed.TotalMilliseconds);
                    // Its HttpClient is left to the collector: a POST may still be failing on it.
                    await old.Process.DisposeAsync();
                    Console.Error.WriteLine($"[bench i] kill {kills}/{killCount}: {Volatile.Read(ref posted)}/{messageCount} messages posted");
                }
            }, cancellationToken);

            for (var i = 0; i < messageCount; i++)
            {
                var marker = $"m{i:D4}";
                var channel = channels[random.Next(channels.Count)];
                // Some runs take a moment, so kills find containers mid-run too.
                var sleep = random.Next(4) == 0 ? " [[sleep 1]]" : "";
                var target = Volatile.Read(ref daemon);
                try
                {
                    using var response = await target.Http.PostAsJsonAsync($"/api/channels/{channel}/messages",
                        new { author = "chaos", content = $"[[reply {marker}]]{sleep}" }, cancellationToken);
                    if (response.StatusCode != HttpStatusCode.Accepted)
                    {
                        throw new BenchFailure($"POST message: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken)}");
                    }
                    accepted.Add(marker);
                }
                catch (Exception cut) when (cut is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
                {
                    // Maybe stored, maybe not: it must not be answered twice either way.
                    unacknowledged.Add(marker);
                    while (ReferenceEquals(Volatile.Read(ref daemon), target) && !killer.IsCompleted)
                    {
                        await Task.Delay(50, cancellationToken);
                    }
                }
                Interlocked.Increment(ref posted);
                await Task.Delay(random.Next(50, 400), cancellationToken);
            }
            await killer;

            var settled = System.Diagnostics.Stopwatch.StartNew();
            await WaitUntilSettledAsync(home, TimeSpan.FromMinutes(10), cancellationToken);
            var settleMs = settled.Elapsed.TotalMilliseconds;
            await daemon.Process.StopAsync();

            var outcome = await ReadOutcomeAsync(home, accepted, cancellationToken);
            var rows = new List<ResultRow>
            {
                new("i", $"messages accepted (of {messageCount} posted; {unacknowledged.Count} cut off by a kill)", accepted.Count.ToString(), "", "", "", ""),
                new("i", $"kill -9 of loop serve during the run", restarts.Count.ToString(), "", "", killCount.ToString(), BenchResult.Verdict(restarts.Count == killCount)),
                new("i", "accepted messages lost (not stored, or never answered)", outcome.Lost.Count.ToString(), "", "", "0", BenchResult.Verdict(outcome.Lost.Count == 0)),
                new("i", "messages answered more than once", outcome.Duplicated.Count.ToString(), "", "", "0", BenchResult.Verdict(outcome.Duplicated.Count == 0)),
                new("i", "runs interrupted by a kill, reported as interrupted", $"{outcome.Interrupted} of {outcome.Interrupted + outcome.Unfinished}", "", "", "all", BenchResult.Verdict(outcome.Unfinished == 0)),
                new("i", $"restart → healthy, median of {restarts.Count}", Stats.Ms(Stats.Median(restarts)), "", "", "", ""),
            };
            var notes = new List<string>
            {
                $"(i) the published loop serve, runner docker, image {image} (the claude test double), {channelCount} channels; {messageCount} messages `[[reply mNNNN]]` (a quarter with `[[sleep 1]]`) posted one at a time 50-400 ms apart to random channels; meanwhile SIGKILL {killCount} times, each 0.5-3 s after the restart before it was healthy, and restarted on the same home. Afterwards, once no run was queued or running and no message waited, the store was read: each accepted marker must be in a user message and in exactly one agent reply; a marker whose POST a kill cut off may be stored or not, but is answered at most once.",
                $"(i) runs: {outcome.Runs} in all, {outcome.Interrupted} failed as interrupted (their messages ran again), {outcome.OtherFailures} failed otherwise. Settled {Stats.Ms(settleMs)} after the last post or kill. Restarts: {string.Join(", ", restarts.Select(Stats.Ms))}.",
            };
            if (outcome.Lost.Count > 0 || outcome.Duplicated.Count > 0)
            {
                notes.Add($"(i) lost ({outcome.Lost.Count}): {string.Join(", ", outcome.Lost.Take(20))}; answered twice ({outcome.Duplicated.Count}): {string.Join(", ", outcome.Duplicated.Take(20))}");
            }
            new BenchResult("i", "kill -9 during traffic", rows, notes).Save(args.Get("out"));
            return outcome.Lost.Count == 0 && outcome.Duplicated.Count == 0 && outcome.Unfinished == 0 ? 0 : 1;
        }
        finally
        {
            await daemon.Process.DisposeAsync();
            daemon.Http.Dispose();
        }
    }

    private sealed record Running(DaemonProcess Process, HttpClient Http);

    private static async Task<Running> StartAsync(DaemonCommand command, string log, CancellationToken cancellationToken)
    {
        var process = command.Start(log);
        await process.WaitHealthyAsync(TimeSpan.FromSeconds(60), cancellationToken);
        var home = command.Environment["LOOP_HOME"];
        var token = (await File.ReadAllTextAsync(Path.Combine(home, "secrets", "local-token"), cancellationToken)).Trim();
        var http = new HttpClient { BaseAddress = process.BaseUri, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        return new Running(process, http);
    }

    private static SqliteConnection Open(string home) =>
        new($"Data Source={Path.Combine(home, "loop.db")};Mode=ReadOnly;Pooling=False");

    /// <summary>Until no message waits for a run and no run is queued or running.</summary>
    private static async Task WaitUntilSettledAsync(string home, TimeSpan within, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            await using (var db = Open(home))
            {
                await db.OpenAsync(cancellationToken);
                await using var command = db.CreateCommand();
                command.CommandText = """
                    SELECT (SELECT count(*) FROM messages WHERE role = 'user' AND run_id IS NULL)
                         + (SELECT count(*) FROM runs WHERE status IN ('queued', 'running'))
                    """;
                if ((long)(await command.ExecuteScalarAsync(cancellationToken))! == 0)
                {
                    return;
                }
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new BenchFailure($"work was still waiting or running {within.TotalMinutes} min after the last kill");
            }
            await Task.Delay(500, cancellationToken);
        }
    }

    private sealed record Outcome(List<string> Lost, List<string> Duplicated, int Runs, int Interrupted, int OtherFailures, int Unfinished);

    private static async Task<Outcome> ReadOutcomeAsync(string home, HashSet<string> accepted, CancellationToken cancellationToken)
    {
        var asked = new Dictionary<string, int>(StringComparer.Ordinal);
        var answered = new Dictionary<string, int>(StringComparer.Ordinal);
        int runs = 0, interrupted = 0, otherFailures = 0, unfinished = 0;
        await using var db = Open(home);
        await db.OpenAsync(cancellationToken);
        await using (var command = db.CreateCommand())
        {
            command.CommandText = "SELECT role, content FROM messages";
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var counts = reader.GetString(0) switch
                {
                    "user" => asked,
                    "agent" => answered,
                    _ => null,
                };
                if (counts is null)
                {
                    continue;
                }
                foreach (Match marker in Marker().Matches(reader.GetString(1)))
                {
                    counts[marker.Value] = counts.GetValueOrDefault(marker.Value) + 1;
                }
            }
        }
        await using (var command = db.CreateCommand())
        {
            command.CommandText = "SELECT status, coalesce(error, '') FROM runs";
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                runs++;
                var status = reader.GetString(0);
                if (status is "queued" or "running")
                {
                    unfinished++;
                }
                else if (status == "failed" && reader.GetString(1).Contains("interrupted", StringComparison.Ordinal))
                {
                    interrupted++;
                }
                else if (status != "succeeded")
                {
                    otherFailures++;
                }
            }
        }
        // A user message's content is "[[reply m0001]]": its marker counts once there and once per reply.
        var lost = accepted.Where(m => asked.GetValueOrDefault(m) != 1 || answered.GetValueOrDefault(m) == 0).Order().ToList();
        var duplicated = answered.Where(a => a.Value > 1).Select(a => a.Key).Order().ToList();
        return new Outcome(lost, duplicated, runs, interrupted, otherFailures, unfinished);
    }

    [GeneratedRegex(@"\bm\d{4}\b")]
    private static partial Regex Marker();
}
