namespace Loop.Bench;

using Loop.Runtime;
using Microsoft.Extensions.Logging;

/// <summary>
/// (a) Loop's own overhead around an agent run, with a sandbox that does no Docker work. Messages
/// go one at a time, round-robin over the channels: each is posted, run and stored before the next
/// is posted, so no two merge into one run and no run waits for a slot: the numbers are Loop's
/// path alone, not queueing.
/// </summary>
public static class OrchestrationBench
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken cancellationToken)
    {
        var home = args.Get("home");
        var messages = args.Int("messages", 1000);
        var warmup = args.Int("warmup", 200);
        var channelCount = args.Int("channels", 50);
        var time = new MonotonicTime();
        var sandbox = new InstantSandbox(time);
        var (options, _) = BenchNode.Options(home, args.Get("node", "loop-bench"), new Dictionary<string, string>(), sandbox);
        await using var host = BenchNode.Host(options, time);
        await host.StartAsync(cancellationToken);
        var node = host;

        await using var runs = new RunWaiter(node.Events, cancellationToken);

        var channels = new List<string>();
        for (var i = 0; i < channelCount; i++)
        {
            channels.Add((await node.Channels.EnsureChannelAsync(Caller.User, null, $"bench-{i}", cancellationToken)).Channel.Id);
        }

        var accept = new List<double>();
        var toSandbox = new List<double>();
        var toStored = new List<double>();
        var endToEnd = new List<double>();
        for (var i = 0; i < warmup + messages; i++)
        {
            var channel = channels[i % channels.Count];
            var done = runs.Expect(channel, TimeSpan.FromSeconds(30));
            var posting = time.GetTimestamp();
            await node.Channels.PostMessageAsync(Caller.User, channel, "bench", $"message {i}", cancellationToken);
            var accepted = time.GetTimestamp();
            var end = await done.WaitAsync(cancellationToken);
            if (end.Kind != "run.finished" || end.RunId is null)
            {
                throw new BenchFailure($"run for message {i} ended {end.Kind}: {end.Text}");
            }
            if (!sandbox.TryTake(end.RunId, out var call))
            {
                throw new BenchFailure($"run {end.RunId} never reached the sandbox");
            }
            if (i < warmup)
            {
                continue;
            }
            var stored = time.TimestampOf(end.At);
            accept.Add(time.MsSince(posting, accepted));
            toSandbox.Add(time.MsSince(accepted, call.Called));
            toStored.Add(time.MsSince(call.Returned, stored));
            endToEnd.Add(time.MsSince(posting, stored));
        }

        if (args.Get("raw", "") is { Length: > 0 } raw)
        {
            // One line per measured message, for looking at spikes: post, to-sandbox, to-stored (ms).
            await File.WriteAllLinesAsync(raw, accept.Select((p, i) => FormattableString.Invariant($"{i},{p:0.000},{toSandbox[i]:0.000},{toStored[i]:0.000}")), cancellationToken);
        }
        var a1 = Stats.Of(toSandbox);
        var a2 = Stats.Of(toStored);
        var post = Stats.Of(accept);
        var total = Stats.Of(endToEnd);
        const double Target = 2.0;
        var rows = new List<ResultRow>
        {
            new("a", "accepted → sandbox RunAsync called, p50 / p99", $"{Stats.Ms(a1.P50)} / {Stats.Ms(a1.P99)}", "-", "-", "p99 < 2 ms", BenchResult.Verdict(a1.P99 < Target)),
            new("a", "sandbox RunAsync returned → reply stored (run final), p50 / p99", $"{Stats.Ms(a2.P50)} / {Stats.Ms(a2.P99)}", "-", "-", "p99 < 2 ms", BenchResult.Verdict(a2.P99 < Target)),
            new("a", "post (store append + wake), p50 / p99", $"{Stats.Ms(post.P50)} / {Stats.Ms(post.P99)}", "-", "-", "(info)", "-"),
            new("a", "post → reply stored, p50 / p99 / max", $"{Stats.Ms(total.P50)} / {Stats.Ms(total.P99)} / {Stats.Ms(total.Max)}", "-", "-", "(info)", "-"),
        };
        var notes = new List<string>
        {
            $"(a) in-process LoopHost (real SQLite store in a fresh LOOP_HOME, WAL, console logs at the default level, debug) with a sandbox that does no Docker work and answers with canned stream-json (init, assistant, result with usage). {messages} messages measured after {warmup} warm-up messages, posted one at a time round-robin over {channelCount} channels (each message is run and stored before the next is posted: no merging, no slot waits).",
            "(a) 'accepted' = ChannelService.PostMessageAsync returned (validation, channel lookup, store append, actor wake); 'sandbox RunAsync called' = first line of ISandbox.RunAsync, where ContainerSandbox makes its container-create request (so it includes the actor's pending read, run insert, slot, run update to running, AgentRunner's spec preparation: project config read, mounts, MCP config file write); 'reply stored' = the run.finished event's timestamp, taken after the reply message append and the final run update.",
        };
        new BenchResult("a", "orchestration overhead (no Docker work)", rows, notes).Save(args.Get("out"));
        return 0;
    }
}
