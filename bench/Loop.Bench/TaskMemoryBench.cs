namespace Loop.Bench;

using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Loop.Runtime;
using Microsoft.Extensions.Logging;

/// <summary>
/// (h) Resident memory of the published <c>loop serve</c> with 100,000 tasks registered (each armed
/// on its timetable, with a reminder), against the same daemon with none. The tasks are created through the TaskService of
/// an in-process node into a Loop home, due over one hour starting <c>--lead</c> seconds after this
/// step began (so none fires while the daemon is measured); then <c>loop serve</c> starts on that
/// home and its scheduler arms them all. Writes the task plan to <c>--plan-out</c>: step g measures
/// fire lateness on the same tasks.
/// </summary>
public static partial class TaskMemoryBench
{
    private const double TargetMb = 300;

    public static async Task<int> RunAsync(BenchArgs args, CancellationToken cancellationToken)
    {
        var id = args.Get("id", "h");
        var state = args.Get("state");
        var loopBinary = args.Get("loop-bin");
        var home = Path.Combine(state, $"{id}-home");
        var settle = args.Int("settle", 10);
        var lead = TimeSpan.FromSeconds(args.Int("lead", 120));
        // The engine socket does not exist: nothing here may start a container; the scheduler,
        // store and API are what is measured.
        var settings = new Dictionary<string, string> { ["DOCKER_HOST"] = "unix://" + Path.Combine(state, "no-docker-engine.sock") };

        var empty = await MeasureAsync(DaemonCommand.LoopServe(loopBinary, Path.Combine(state, $"{id}-empty-home"), settings),
            Path.Combine(state, $"{id}-empty.log"), settle, id, cancellationToken);

        var plan = new TaskPlan(TaskPlan.NextWholeSecond(DateTimeOffset.UtcNow + lead), 3600, args.Int("tasks", 100_000), args.Int("channels", 100), "mixed");
        double createSeconds;
        {
            var time = TimeProvider.System;
            var (options, _) = BenchNode.Options(home, args.Get("node", "loop-bench"), new Dictionary<string, string>(), new InstantSandbox(time));
            await using var host = BenchNode.Host(options, time, logging: logging => logging.SetMinimumLevel(LogLevel.Warning).AddSimpleConsole());
            await host.StartAsync(cancellationToken);
            var node = host;
            var channels = await plan.EnsureChannelsAsync(node, cancellationToken);
            createSeconds = await plan.CreateAsync(node, channels, id, cancellationToken);
        }
        plan.EnsureAhead(TimeSpan.FromSeconds(20), "task creation");
        Console.Error.WriteLine($"[bench {id}] {plan.Tasks} tasks created in {createSeconds:0.0} s ({plan.Tasks / createSeconds:0}/s)");

        var full = await MeasureAsync(DaemonCommand.LoopServe(loopBinary, home, settings), Path.Combine(state, $"{id}-loop.log"), settle, id, cancellationToken);
        if (full.Armed != plan.Tasks)
        {
            throw new BenchFailure($"loop serve armed {full.Armed?.ToString(CultureInfo.InvariantCulture) ?? "(no log line)"} tasks, expected {plan.Tasks}");
        }
        plan.EnsureAhead(TimeSpan.FromSeconds(8), "the loop serve measurement");
        plan.Save(args.Get("plan-out"));

        var rows = new List<ResultRow>
        {
            new(id, $"RSS of loop serve with {plan.Tasks:N0} tasks armed, {settle} s after healthy (no tasks: baseline)", $"{Stats.Num(full.RssMb, "0.0")} MB", $"{Stats.Num(empty.RssMb, "0.0")} MB",
                Stats.Num(full.RssMb / empty.RssMb, "0.00"), "< 300 MB", BenchResult.Verdict(full.RssMb < TargetMb)),
            new(id, "peak RSS (VmHWM) / start → first 200 of /api/health", $"{Stats.Num(full.PeakMb, "0.0")} MB / {Stats.Ms(full.ReadyMs)}", $"{Stats.Num(empty.PeakMb, "0.0")} MB / {Stats.Ms(empty.ReadyMs)}",
                "-", "(info)", "-"),
        };
        var notes = new List<string>
        {
            $"({id}) the published artifacts/bin/loop, `loop serve` with its defaults (log_level debug) except LOOP_HOME, LOOP_API_ADDR and DOCKER_HOST pointing at a socket that does not exist (so nothing can start a container). Its home holds {plan.Tasks:N0} tasks on {plan.Channels} channels, half once tasks (ISO instants to the ms) and half daily 6-field cron tasks, due evenly over one hour from {plan.Start:HH:mm:ss} UTC, created by this step through the TaskService of an in-process node (validation, store insert, one at a time: {Stats.Num(createSeconds, "0.0")} s, {Stats.Num(plan.Tasks / createSeconds)}/s). At start the node reads their next slots and arms each on its timetable (its log: \"Armed {full.Armed} task(s)\"); none is due before the measurement ends.",
            $"({id}) RSS = VmRSS of the daemon {settle} s after its first 200 on /api/health, no requests in between (the last of one sample a second; the highest was {Stats.Num(full.MaxSampleMb, "0.0")} MB); peak = VmHWM then, which includes loading every task at start. Baseline: the same daemon and settings on an empty home, measured the same way in this run. Step g then starts an in-process node on this store and measures fire lateness on these tasks.",
        };
        new BenchResult(id, $"memory with {plan.Tasks:N0} tasks", rows, notes).Save(args.Get("out"));
        return 0;
    }

    private sealed record Memory(double ReadyMs, double RssMb, double MaxSampleMb, double PeakMb, int? Armed);

    private static async Task<Memory> MeasureAsync(DaemonCommand command, string log, int settle, string id, CancellationToken cancellationToken)
    {
        await using var daemon = command.Start(log);
        var ready = await daemon.WaitHealthyAsync(TimeSpan.FromSeconds(60), cancellationToken);
        var samples = new List<double>();
        for (var s = 0; s < settle; s++)
        {
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            samples.Add(daemon.RssMb());
        }
        var peak = SelfMemory.StatusMb(daemon.Pid, "VmHWM:");
        await daemon.StopAsync();
        var armed = Armed().Matches(await File.ReadAllTextAsync(log, cancellationToken)).LastOrDefault() is { } match
            ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)
            : (int?)null;
        Console.Error.WriteLine($"[bench {id}] {command.Name} ({armed} armed): healthy in {ready:0} ms, RSS {samples[^1]:0.0} MB after {settle} s (max {samples.Max():0.0}), peak {peak:0.0} MB");
        return new Memory(ready, samples[^1], samples.Max(), peak, armed);
    }

    [GeneratedRegex(@"Armed (\d+) task")]
    private static partial Regex Armed();
}
