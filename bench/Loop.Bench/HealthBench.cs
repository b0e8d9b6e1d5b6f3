namespace Loop.Bench;

/// <summary>(e) GET /api/health under <c>wrk -t2 -c20 -d10s --latency</c>, loop serve then the Node baseline.</summary>
public static class HealthBench
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken cancellationToken)
    {
        var state = args.Get("state");
        var seconds = args.Int("seconds", 10);
        var loop = DaemonCommand.LoopServe(args.Get("loop-bin"), Path.Combine(state, "e-loop"),
            new Dictionary<string, string> { ["LOOP_CONTAINER_IMAGE"] = args.Get("image") });
        var node = DaemonCommand.NodeHealth(args.Get("node-script"));

        var (l, lRss) = await MeasureAsync(loop, Path.Combine(state, "e-loop.log"), seconds, cancellationToken);
        var (n, nRss) = await MeasureAsync(node, Path.Combine(state, "e-node.log"), seconds, cancellationToken);
        var rows = new List<ResultRow>
        {
            new("e", "GET /api/health requests/s (wrk -t2 -c20 -d10s)", Stats.Num(l.RequestsPerSecond), Stats.Num(n.RequestsPerSecond), Stats.Num(l.RequestsPerSecond / n.RequestsPerSecond, "0.00"), "≥ 15,000/s", BenchResult.Verdict(l.RequestsPerSecond >= 15000 && l.Non2xx == 0)),
            new("e", "GET /api/health latency p50 / p99", $"{Stats.Ms(l.P50Ms)} / {Stats.Ms(l.P99Ms)}", $"{Stats.Ms(n.P50Ms)} / {Stats.Ms(n.P99Ms)}", Stats.Num(l.P99Ms / n.P99Ms, "0.00"), "p99 < 5 ms", BenchResult.Verdict(l.P99Ms < 5)),
            new("e", "RSS after the load", $"{Stats.Num(lRss, "0.0")} MB", $"{Stats.Num(nRss, "0.0")} MB", Stats.Num(lRss / nRss, "0.00"), "(info)", "-"),
        };
        var notes = new List<string>
        {
            $"(e) same servers as (d), each started once, then an untimed 3 s wrk warm-up, then `wrk -t2 -c20 -d{seconds}s --latency http://127.0.0.1:PORT/api/health`; wrk runs on the same 2 cores as the server. Loop: {l.Requests} requests, non-2xx {l.Non2xx}, socket errors {l.SocketErrors}. Node: {n.Requests} requests, non-2xx {n.Non2xx}, socket errors {n.SocketErrors}.",
        };
        new BenchResult("e", "health endpoint throughput", rows, notes).Save(args.Get("out"));
        return 0;
    }

    private static async Task<(WrkResult Result, double RssMb)> MeasureAsync(DaemonCommand command, string log, int seconds, CancellationToken cancellationToken)
    {
        await using var daemon = command.Start(log);
        await daemon.WaitHealthyAsync(TimeSpan.FromSeconds(30), cancellationToken);
        var url = new Uri(daemon.BaseUri, "/api/health");
        await Wrk.RunAsync(url, 2, 20, 3, null, null, cancellationToken);
        var result = await Wrk.RunAsync(url, 2, 20, seconds, null, null, cancellationToken);
        var rss = daemon.RssMb();
        Console.Error.WriteLine($"[bench e] {command.Name}: {result.RequestsPerSecond:0} req/s, p50 {result.P50Ms:0.000} ms, p99 {result.P99Ms:0.000} ms, non-2xx {result.Non2xx}, RSS {rss:0.0} MB");
        return (result, rss);
    }
}
