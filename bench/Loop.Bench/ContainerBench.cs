namespace Loop.Bench;

using System.Diagnostics;
using Loop.Runtime;
using Microsoft.Extensions.Logging;

/// <summary>
/// (b) A whole run of a trivial container through Loop versus <c>docker run --rm IMAGE true</c>,
/// interleaved one by one in the same process so both see the same engine and machine state.
/// </summary>
public static class ContainerBench
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken cancellationToken)
    {
        var home = args.Get("home");
        var image = args.Get("image");
        var count = args.Int("count", 20);
        var warmup = args.Int("warmup", 2);
        var benchLabel = args.Get("label", "loop.bench=1");
        var time = new MonotonicTime();
        var (options, config) = BenchNode.Options(home, args.Get("node", "loop-bench"), new Dictionary<string, string>
        {
            ["LOOP_CONTAINER_IMAGE"] = image,
            ["LOOP_RUNNER"] = "docker",
        }, sandbox: null);
        // `loop serve` makes this dir when its API binds the daemon socket there; runs mount it.
        Directory.CreateDirectory(options.Paths.RunDir);
        await using var host = BenchNode.Host(options, time);
        await host.StartAsync(cancellationToken);
        var node = host;

        await using var runs = new RunWaiter(node.Events, cancellationToken);
        var channel = (await node.Channels.EnsureChannelAsync(Caller.User, null, "bench-container", cancellationToken)).Channel.Id;

        var loop = new List<double>();
        var docker = new List<double>();
        for (var i = 0; i < warmup + count; i++)
        {
            var done = runs.Expect(channel, TimeSpan.FromSeconds(120));
            var posting = time.GetTimestamp();
            await node.Channels.PostMessageAsync(Caller.User, channel, "bench", $"container run {i}", cancellationToken);
            var end = await done.WaitAsync(cancellationToken);
            if (end.Kind != "run.finished")
            {
                throw new BenchFailure($"Loop run {i} ended {end.Kind}: {end.Text}");
            }
            var loopMs = time.MsSince(posting, time.TimestampOf(end.At));

            var started = Stopwatch.GetTimestamp();
            await DockerRunAsync(["run", "--rm", "--label", benchLabel, image, "true"], cancellationToken);
            var dockerMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (i >= warmup)
            {
                loop.Add(loopMs);
                docker.Add(dockerMs);
            }
            Console.Error.WriteLine($"[bench b] {i + 1}/{warmup + count}{(i < warmup ? " (warm-up)" : "")}: loop {loopMs:0.0} ms, docker run {dockerMs:0.0} ms");
        }

        var l = Stats.Of(loop);
        var d = Stats.Of(docker);
        var ratio = l.P50 / d.P50;
        var rows = new List<ResultRow>
        {
            new("b", $"trivial container run, median of {count} (p90)", $"{Stats.Ms(l.P50)} ({Stats.Ms(l.P90)})", $"{Stats.Ms(d.P50)} ({Stats.Ms(d.P90)})", Stats.Num(ratio, "0.00"), "ratio ≤ 1.1", BenchResult.Verdict(ratio <= 1.1)),
        };
        var notes = new List<string>
        {
            $"(b) image {image}: FROM loop-agent-test:latest with a `claude` shell script that prints init/assistant/result stream-json and exits 0 (bench/image). Both sides run the image's entrypoint (tini → loop-entrypoint → command). {count} of each, interleaved (Loop run, then docker run), after {warmup} untimed warm-up pairs.",
            $"(b) Loop side: an in-process LoopHost composed as `loop serve` is (runner docker, the real ContainerSandbox behind the image gate, real SQLite store, max_concurrent_containers {config.MaxConcurrentContainers}); timed from ChannelService.PostMessageAsync called to the run.finished event (reply and final run stored). Includes: store append, actor, run insert/update, spec preparation, container create with the production limits (memory, cpus, pids, read-only root + tmpfs, cap-drop ALL, no-new-privileges, bind mounts of the work dir, MCP dir, Claude state, daemon socket dir and the loop binary), attach, start, secrets on stdin, stdout pump and stream-json parse, wait, inspect, remove, reply append.",
            "(b) Baseline: `docker run --rm --label loop.bench=1 IMAGE true` through the docker CLI, timed from process start to exit: CLI start-up, create, attach, start, wait, auto-remove.",
        };
        new BenchResult("b", "trivial container through Loop vs docker run", rows, notes).Save(args.Get("out"));
        return 0;
    }

    private static async Task DockerRunAsync(string[] arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("docker") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start) ?? throw new BenchFailure("cannot start docker");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new BenchFailure($"docker {string.Join(' ', arguments)} exited {process.ExitCode}: {await stderr}{await stdout}");
        }
    }
}
