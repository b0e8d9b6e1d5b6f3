namespace Loop.Integration.Tests;

using System.Diagnostics;
using System.Text.Json.Nodes;
using Loop.Testing;
using Xunit.Abstractions;

/// <summary>Scheduled tasks and failover on a cluster of real <c>loop serve</c> nodes: nodes die
/// (kill -9) or freeze (SIGSTOP) at bad moments, and what users see stays right.</summary>
[Collection("cluster")]
public sealed class ClusterTaskTests(ITestOutputHelper output)
{
    /// <summary>How many once tasks come due together. The issue asks for 1,000, but on this 2-core
    /// machine a test of 1,000 took 2m47s to 3m50s (its runs ending 133 s to 191 s after the
    /// instant); 500 takes 1m38s when the machine is otherwise quiet (2m18s to 2m38s while other
    /// suites loaded it), the most that stays under about two minutes.</summary>
    private const int Slots = 500;

    /// <summary>The channels they post to; a channel runs one thing at a time.</summary>
    private const int Channels = 10;

    /// <summary>How long before their instant the node dies.</summary>
    private static readonly TimeSpan KillAhead = TimeSpan.FromSeconds(3);

    /// <summary>
    /// "Fires once", as a user reads it through the API: a once task has a single slot, and each
    /// firing of it is a run carrying the task's id (runs have no slot field; the task's runs and the
    /// channel's runs with its task_id are the same list). So each task must end with exactly one
    /// run, and that run must have succeeded, its answer in the channel once. A run that failed
    /// because its node died would be reported, not run again (a task run has no message to queue
    /// again), and would count as the slot's one firing; but here the node dies before any slot is
    /// claimed (claims happen at most 2 s ahead of the instant), so nothing of it can be
    /// interrupted: a failed run, a second run or a missing one are each a defect.
    /// </summary>
    [Fact]
    public async Task No_slot_fires_twice_and_none_is_missed_when_a_node_dies_just_before_they_are_due()
    {
        var scratch = Directory.CreateTempSubdirectory("loop-slots-").FullName;
        try
        {
            await FireSlotsAcrossANodesDeathAsync(scratch);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    private async Task FireSlotsAcrossANodesDeathAsync(string scratch)
    {
        var clock = Stopwatch.StartNew();
        // Claiming is the same whatever runs the agents: the process runner keeps hundreds of runs
        // quick (containers ran about one a second here: a thousand would take a quarter of an
        // hour). The agents keep their sessions in a home of the test's.
        await using var cluster = await LoopCluster.StartAsync(0);
        var config = new JsonObject { ["runner"] = "process", ["claude_bin_path"] = Path.Combine(AppContext.BaseDirectory, "claude"), ["log_level"] = "info" };
        var home = new Dictionary<string, string?> { ["HOME"] = Directory.CreateDirectory(Path.Combine(scratch, "home")).FullName };
        for (var i = 1; i <= 3; i++)
        {
            await cluster.AddNodeAsync($"node-{i}", config.DeepClone().AsObject(), home);
        }
        var victim = cluster["node-2"];
        var survivor = cluster["node-1"];
        output.WriteLine($"{clock.Elapsed}: 3 nodes up");

        var channels = new List<string>();
        for (var i = 0; i < Channels; i++)
        {
            channels.Add((string)(await cluster[i % 3].CreateChannelAsync(Directory.CreateDirectory(Path.Combine(scratch, $"project-{i}")).FullName))["id"]!);
        }
        // Far enough ahead to create them all first, on a loaded machine too.
        var due = DateTimeOffset.UtcNow.AddSeconds(20);
        var tasks = new string[Slots];
        // Through every node, several at a time, as users of each node would.
        await Parallel.ForEachAsync(Enumerable.Range(0, Slots), new ParallelOptions { MaxDegreeOfParallelism = 6 }, async (i, _) =>
        {
            var task = await cluster[i % 3].CreateTaskAsync(new
            {
                channel_id = channels[i % Channels],
                type = "once",
                schedule = due.ToString("O"),
                prompt = $"[[reply slot {i}]]",
            });
            tasks[i] = (string)task["id"]!;
        });
        output.WriteLine($"{clock.Elapsed}: {Slots} tasks created, {(due - DateTimeOffset.UtcNow).TotalSeconds:F1} s before their instant");

        await UntilAsync(due - KillAhead);
        await victim.KillAsync();
        var killedAt = DateTimeOffset.UtcNow;
        output.WriteLine($"{clock.Elapsed}: node-2 killed {(due - killedAt).TotalSeconds:F1} s before the instant");
        Assert.True(killedAt < due - TimeSpan.FromSeconds(2),
            $"the tasks were created too slowly: node-2 died only {(due - killedAt).TotalSeconds:F1} s before the instant, when it may have claimed slots");

        // Until every task has a run that ended and no channel has work left; a channel that got
        // there is not read again until the end (the survivor runs agents too: polling costs it).
        var deadline = DateTime.UtcNow.AddSeconds(240);
        var waiting = channels.ToDictionary(c => c, c => tasks.Where((_, i) => channels[i % Channels] == c).ToList());
        while (waiting.Count > 0)
        {
            foreach (var (channel, ofChannel) in waiting.ToList())
            {
                var ofRuns = await RunsOfAsync(survivor, [channel]);
                var ended = ofRuns.Where(r => LoopDaemon.IsFinal((string)r["status"]!)).Select(r => (string?)r["task_id"]).ToHashSet();
                if (ofChannel.All(ended.Contains) && ofRuns.All(r => LoopDaemon.IsFinal((string)r["status"]!)))
                {
                    waiting.Remove(channel);
                }
            }
            if (waiting.Count > 0 && DateTime.UtcNow > deadline)
            {
                var pending = await RunsOfAsync(survivor, waiting.Keys);
                Assert.Fail($"after 240 s, {waiting.Count} channel(s) still wait for runs of their tasks: " +
                    $"{pending.Count(r => !LoopDaemon.IsFinal((string)r["status"]!))} queued or running, " +
                    $"{waiting.Values.Sum(t => t.Count) - pending.Select(r => (string?)r["task_id"]).Distinct().Count()} tasks with no run\n{Problems(cluster)}");
            }
            await Task.Delay(1000);
        }
        var runs = await RunsOfAsync(survivor, channels);
        output.WriteLine($"{clock.Elapsed}: every task has a run that ended, {(DateTimeOffset.UtcNow - due).TotalSeconds:F1} s after the instant");

        var started = runs.Where(r => r["started_at"] is not null).Select(r => DateTimeOffset.Parse((string)r["started_at"]!)).Order().ToList();
        if (started.Count > 0)
        {
            output.WriteLine($"runs started {(started[0] - due).TotalSeconds:F1} s to {(started[^1] - due).TotalSeconds:F1} s after the instant");
        }

        var byTask = runs.GroupBy(r => (string?)r["task_id"] ?? "").ToDictionary(g => g.Key, g => g.ToList());
        var strangers = byTask.Keys.Where(k => !tasks.Contains(k)).ToList();
        if (strangers.Count > 0)
        {
            Assert.Fail($"runs of no task of this test: {string.Join(", ", strangers)}");
        }
        if (tasks.Where(t => byTask[t].Count > 1).ToList() is [var first, ..] twice)
        {
            Assert.Fail($"{twice.Count} slot(s) fired more than once, e.g. {first}: {Json(byTask[first])}\n{Problems(cluster)}");
        }
        if (tasks.Select(t => byTask[t][0]).Where(r => (string)r["status"]! != "succeeded").ToList() is [var failure, ..] failed)
        {
            Assert.Fail($"{failed.Count} slot(s) did not succeed, e.g. {failure.ToJsonString()}\n{Problems(cluster)}");
        }
        for (var i = 0; i < Slots; i++)
        {
            Assert.Equal($"slot {i}", (string)byTask[tasks[i]][0]["reply"]!);
        }

        // Each answer is in its channel once, and no task is left to fire again.
        var answers = new List<string>();
        foreach (var channel in channels)
        {
            answers.AddRange((await MessagesOfAsync(survivor, channel)).Where(m => (string)m["role"]! == "agent").Select(m => (string)m["content"]!));
            foreach (var task in await survivor.GetArrayAsync($"/api/tasks?channel_id={channel}"))
            {
                Assert.Null(task!["next_run_at"]);
                Assert.NotNull(task["last_run_at"]);
            }
        }
        Assert.Equal(Enumerable.Range(0, Slots).Select(i => $"slot {i}").Order(StringComparer.Ordinal), answers.Order(StringComparer.Ordinal));
    }

    /// <summary>A node that stops answering (SIGSTOP: a hung machine, a VM paused) while it runs a
    /// channel's agent is declared dead within seconds: its run is reported and the message answered
    /// on another node. Resumed, it finds itself dead and stops (Orleans ends a silo declared dead),
    /// and the answer its agent finished meanwhile is not stored: the user sees one answer.</summary>
    [Fact]
    public async Task A_node_frozen_past_its_timeout_is_declared_dead_its_channels_answer_elsewhere_and_when_resumed_it_stops()
    {
        await using var cluster = await LoopCluster.StartAsync(3);
        var dir = AgentUser.CreateDir();
        var id = (string)(await cluster[0].CreateChannelAsync(dir))["id"]!;

        // The first attempt marks the directory and works on for a while; the one after the
        // failover finds the mark and answers at once. Each says which one it was.
        await cluster[0].PostMessageAsync(id, "[[sh test -f attempted && echo second attempt || { touch attempted; sleep 20; echo first attempt; }]]");
        var running = await cluster[0].WaitForRunningAsync(id);
        var runId = (string)running["id"]!;
        // Frozen once its agent is at work (not while its container is still being started).
        var frozen = await cluster.NodeAtWorkAsync(runId, Path.Combine(dir, "attempted"));
        var node = cluster.NameOf(frozen);
        var pid = (int)(await frozen.GetObjectAsync("/api/health"))["pid"]!;
        var survivor = cluster.Nodes.First(n => n != frozen);
        Assert.True(frozen.IsRunning);
        var resumed = false;
        try
        {
            var frozenOutput = frozen.Output.Length;
            Signal("STOP", pid);
            output.WriteLine($"{DateTimeOffset.UtcNow:O}: {node} (pid {pid}) frozen while it runs {runId}");

            // Declared dead: its run is reported and the message answered on another node.
            List<JsonObject> runs;
            try
            {
                runs = await survivor.WaitForFinishedRunsAsync(id, 2, TimeSpan.FromSeconds(90));
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException(e.Message + "\n" + cluster.Outputs());
            }
            output.WriteLine($"{DateTimeOffset.UtcNow:O}: answered elsewhere");
            Assert.Equal(runId, (string)runs[0]["id"]!);
            Assert.Equal("failed", (string)runs[0]["status"]!);
            Assert.Contains($"node {node} stopped", (string)runs[0]["error"]!);
            Assert.Equal("succeeded", (string)runs[1]["status"]!);
            Assert.Contains("second attempt", (string)runs[1]["reply"]!);

            // The frozen node's agent finishes its work meanwhile: its answer waits for the node.
            await UntilAsync(async () => !await IsRunningAsync(runId), TimeSpan.FromSeconds(60), () => $"the container of {runId} never ended\n{cluster.Outputs()}");
            output.WriteLine($"{DateTimeOffset.UtcNow:O}: the frozen node's container has ended");

            Signal("CONT", pid);
            resumed = true;
            var resumedAt = Stopwatch.StartNew();
            var exited = await UntilAsync(() => Task.FromResult(!frozen.IsRunning), TimeSpan.FromSeconds(30));
            output.WriteLine($"{DateTimeOffset.UtcNow:O}: resumed {node} {(exited ? $"exited with {frozen.ExitCode} after {resumedAt.Elapsed.TotalSeconds:F1} s" : "still runs after 30 s")}");

            var messages = await survivor.GetArrayAsync($"/api/channels/{id}/messages");
            var after = (await survivor.GetArrayAsync($"/api/channels/{id}/runs")).Reverse().Select(r => r!.AsObject()).ToList();
            var seen = $"messages: {messages.ToJsonString()}\nruns: {Json(after)}\n" +
                $"===== {node} since it was frozen =====\n{frozen.Output[frozenOutput..]}";
            Assert.True(exited, $"{node}, declared dead while frozen, still runs 30 s after it was resumed\n{seen}");
            // Its late answer is not stored: the message has one answer, from the node that took over,
            // and the run it was declared dead in stays failed.
            Assert.True(messages.Count(m => (string)m!["role"]! == "user") == 1, seen);
            var answers = messages.Where(m => (string)m!["role"]! == "agent").ToList();
            Assert.True(answers.Count == 1, $"{answers.Count} agent answers to one message\n{seen}");
            Assert.Contains("second attempt", (string)answers[0]!["content"]!);
            Assert.True(after.Count == 2, seen);
            Assert.True((string)after[0]["status"]! == "failed" && ((string)after[0]["error"]!).Contains($"node {node} stopped", StringComparison.Ordinal)
                && after[0]["reply"] is null, $"the run of the node declared dead was overwritten\n{seen}");
        }
        finally
        {
            if (!resumed && frozen.IsRunning)
            {
                Signal("CONT", pid);
            }
            // The frozen node stopped without cleaning up after itself.
            foreach (var container in await DockerCli.ContainersAsync($"loop.run={runId}"))
            {
                await DockerCli.RunAsync("rm", "-f", container);
            }
        }
    }

    private static string Json(IEnumerable<JsonObject> items) => new JsonArray(items.Select(i => (JsonNode)i.DeepClone()).ToArray()).ToJsonString();

    /// <summary>Every run of the channels, through <paramref name="node"/>'s API, page after page.</summary>
    private static async Task<List<JsonObject>> RunsOfAsync(LoopDaemon node, IEnumerable<string> channels)
    {
        var runs = new List<JsonObject>();
        foreach (var channel in channels)
        {
            string? before = null;
            while (true)
            {
                var page = await node.GetArrayAsync($"/api/channels/{channel}/runs?limit=500" + (before is null ? "" : $"&before={before}"));
                runs.AddRange(page.Select(r => r!.AsObject()));
                if (page.Count < 500)
                {
                    break;
                }
                before = (string)page[^1]!["id"]!;
            }
        }
        return runs;
    }

    /// <summary>Every message of the channel, page after page.</summary>
    private static async Task<List<JsonObject>> MessagesOfAsync(LoopDaemon node, string channel)
    {
        var messages = new List<JsonObject>();
        long after = 0;
        while (true)
        {
            var page = await node.GetArrayAsync($"/api/channels/{channel}/messages?after={after}&limit=500");
            messages.AddRange(page.Select(m => m!.AsObject()));
            if (page.Count < 500)
            {
                return messages;
            }
            after = (long)page[^1]!["id"]!;
        }
    }

    /// <summary>The lines of each node's log that report a problem, for a failure's message.</summary>
    private static string Problems(LoopCluster cluster) =>
        string.Join("\n", cluster.Nodes.Select((node, i) => $"===== node-{i + 1} =====\n" + string.Join("\n",
            node.Output.Split('\n').Where(l => l.Contains(" warn ", StringComparison.Ordinal) || l.Contains(" error ", StringComparison.Ordinal)
                || l.Contains(" critical ", StringComparison.Ordinal)).TakeLast(200))));

    /// <summary>Waits until the wall clock reaches <paramref name="instant"/>.</summary>
    private static async Task UntilAsync(DateTimeOffset instant)
    {
        while (instant - DateTimeOffset.UtcNow is { Ticks: > 0 } left)
        {
            await Task.Delay(left);
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it holds (true) or <paramref name="timeout"/> passes (false).</summary>
    private static async Task<bool> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }
            await Task.Delay(100);
        }
        return true;
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> failure)
    {
        if (!await UntilAsync(condition, timeout))
        {
            throw new TimeoutException(failure());
        }
    }

    /// <summary>Whether a container of the run is still running.</summary>
    private static async Task<bool> IsRunningAsync(string runId) =>
        (await DockerCli.RunAsync("ps", "-q", "--filter", $"label=loop.run={runId}")).Trim().Length > 0;

    /// <summary>Sends SIGSTOP, SIGCONT, ... to the process, as <c>kill -s</c> does.</summary>
    private static void Signal(string signal, int pid)
    {
        using var kill = Process.Start("kill", ["-s", signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }
}
