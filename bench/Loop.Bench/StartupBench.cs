namespace Loop.Bench;

/// <summary>(d) Time from process start to the first 200 of GET /api/health, and resident memory
/// after idling, for <c>loop serve</c> and the Node baseline, alternating, median of N starts each.</summary>
public static class StartupBench
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken cancellationToken)
    {
        var state = args.Get("state");
        var loopBinary = args.Get("loop-bin");
        var image = args.Get("image");
        var nodeScript = args.Get("node-script");
        var runs = args.Int("runs", 5);
        var idleSeconds = args.Int("idle", 5);

        var loopReady = new List<double>();
        var loopRss = new List<double>();
        var nodeReady = new List<double>();
        var nodeRss = new List<double>();
        // Round 0 is a warm-up (page cache, this program's own HTTP client), not counted.
        for (var round = 0; round <= runs; round++)
        {
            var home = Path.Combine(state, $"d-loop-{round}");
            var settings = new Dictionary<string, string> { ["LOOP_CONTAINER_IMAGE"] = image };
            // Extra variables for trying runtime knobs by hand: --loop-env "DOTNET_TieredPGO=0;..."
            foreach (var pair in args.Get("loop-env", "").Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                settings[pair.Split('=', 2)[0]] = pair.Split('=', 2)[1];
            }
            var loop = DaemonCommand.LoopServe(loopBinary, home, settings);
            var (ready, rss) = await MeasureAsync(loop, Path.Combine(state, $"d-loop-{round}.log"), idleSeconds, round == 0, cancellationToken);
            if (round > 0)
            {
                loopReady.Add(ready);
                loopRss.Add(rss);
            }
            (ready, rss) = await MeasureAsync(DaemonCommand.NodeHealth(nodeScript), Path.Combine(state, $"d-node-{round}.log"), idleSeconds, round == 0, cancellationToken);
            if (round > 0)
            {
                nodeReady.Add(ready);
                nodeRss.Add(rss);
            }
        }

        double lr = Stats.Median(loopReady), nr = Stats.Median(nodeReady), lm = Stats.Median(loopRss), nm = Stats.Median(nodeRss);
        var rows = new List<ResultRow>
        {
            new("d", $"start → first 200 /api/health, median of {runs}", Stats.Ms(lr), Stats.Ms(nr), Stats.Num(lr / nr, "0.00"), "≤ 1.0 s", BenchResult.Verdict(lr <= 1000)),
            new("d", $"idle RSS {idleSeconds} s after healthy, median of {runs}", $"{Stats.Num(lm, "0.0")} MB", $"{Stats.Num(nm, "0.0")} MB", Stats.Num(lm / nm, "0.00"), "< 100 MB", BenchResult.Verdict(lm < 100)),
        };
        var notes = new List<string>
        {
            $"(d) loop: the published artifacts/bin/loop (self-contained single file), `loop serve` with its defaults (runner docker against the running engine, log_level debug) except LOOP_HOME (a fresh empty home per start: the store is created and migrated in the measured time), LOOP_API_ADDR (127.0.0.1:free port) and LOOP_CONTAINER_IMAGE={image} (present, so no image build). Node: `node bench/baseline/health-server.js PORT` (http module, a health JSON of the same shape). Starts alternate loop/node; one untimed warm-up start of each first.",
            $"(d) ready time: from just before Process.Start to the first 200 answer, polling every 2 ms with a fresh connection while refused. RSS: VmRSS from /proc/PID/status {idleSeconds} s after the first 200 (no requests in between). Samples loop: {string.Join(", ", loopReady.Select(Stats.Ms))}; {string.Join(", ", loopRss.Select(r => Stats.Num(r, "0.0") + " MB"))}. Node: {string.Join(", ", nodeReady.Select(Stats.Ms))}; {string.Join(", ", nodeRss.Select(r => Stats.Num(r, "0.0") + " MB"))}.",
        };
        new BenchResult("d", "start-up and idle memory", rows, notes).Save(args.Get("out"));
        return 0;
    }

    private static async Task<(double ReadyMs, double RssMb)> MeasureAsync(DaemonCommand command, string log, int idleSeconds, bool warmup, CancellationToken cancellationToken)
    {
        await using var daemon = command.Start(log);
        var ready = await daemon.WaitHealthyAsync(TimeSpan.FromSeconds(30), cancellationToken);
        if (warmup)
        {
            Console.Error.WriteLine($"[bench d] {command.Name}: healthy in {ready:0.0} ms (warm-up)");
            return (ready, 0);
        }
        await Task.Delay(TimeSpan.FromSeconds(idleSeconds), cancellationToken);
        var rss = daemon.RssMb();
        Console.Error.WriteLine($"[bench d] {command.Name}: healthy in {ready:0.0} ms, idle RSS {rss:0.0} MB");
        return (ready, rss);
    }
}
