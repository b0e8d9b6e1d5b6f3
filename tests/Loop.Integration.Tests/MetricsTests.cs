namespace Loop.Integration.Tests;

using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Loop.Testing;

/// <summary>/metrics, as Prometheus scrapes it from a running daemon.</summary>
public sealed partial class MetricsTests
{
    [Fact]
    public async Task Metrics_count_the_runs_messages_and_task_slots_of_the_node_beside_orleans_and_aspnetcore()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["max_concurrent_containers"] = 2 });
        var channel = (string)(await loop.CreateChannelAsync(AgentUser.CreateDir("loop-metrics-")))["id"]!;

        // A message that succeeds, then a task slot whose run fails.
        await loop.PostMessageAsync(channel, "[[reply hello]]");
        await loop.WaitForFinishedRunsAsync(channel, 1);
        await loop.CreateTaskAsync(new { channel_id = channel, type = "once", schedule = "1s", prompt = "[[fail something broke]]" });
        var runs = await loop.WaitForFinishedRunsAsync(channel, 2);
        Assert.Equal(["succeeded", "failed"], runs.Select(r => (string)r["status"]!));

        // A scraper on the daemon's machine needs no token. The run's end is stored before it is counted: wait for the count.
        using var scraper = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        List<Sample> samples = [];
        await Eventually.WaitAsync(async () =>
        {
            samples = Parse(await scraper.GetStringAsync("/metrics"));
            return samples.Any(s => s.Name == "loop_runs_finished_total" && s.Labels.GetValueOrDefault("outcome") == "failed" && s.Value == 1);
        }, "the failed run counted");

        Assert.Equal(2, Value(samples, "loop_runs_started_total"));
        Assert.Equal(1, Value(samples, "loop_runs_finished_total", ("outcome", "succeeded")));
        Assert.Equal(1, Value(samples, "loop_run_duration_seconds_count", ("outcome", "succeeded")));
        Assert.Equal(1, Value(samples, "loop_run_duration_seconds_count", ("outcome", "failed")));
        Assert.Equal(1, Value(samples, "loop_run_duration_seconds_bucket", ("outcome", "succeeded"), ("le", "+Inf")));
        Assert.Equal(1, Value(samples, "loop_messages_accepted_total", ("source", "api")));
        Assert.Equal(1, Value(samples, "loop_task_fire_lateness_seconds_count"));
        Assert.Equal(2, Value(samples, "loop_container_pool_capacity"));
        Assert.Equal(0, Value(samples, "loop_container_pool_in_use"));
        Assert.Equal(0, Value(samples, "loop_channel_queue_depth"));
        // What Orleans and ASP.NET Core publish comes along.
        Assert.Contains(samples, s => s.Name.StartsWith("orleans_", StringComparison.Ordinal));
        Assert.Contains(samples, s => s.Name == "http_server_request_duration_seconds_count" && s.Labels.GetValueOrDefault("http_route") == "/api/channels/{id}/messages");
        Assert.Contains(samples, s => s.Name.StartsWith("kestrel_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Only_callers_on_the_daemons_machine_or_with_a_token_read_the_metrics()
    {
        // The API on every interface, so a call can come from an address of this machine that is not loopback.
        var port = LoopDaemon.FreePort();
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["api_addr"] = $"0.0.0.0:{port}" });
        var outside = NonLoopbackAddress();
        using var remote = new HttpClient { BaseAddress = new Uri($"http://{outside}:{port}") };

        using (var refused = await remote.GetAsync("/metrics"))
        {
            var text = await refused.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Contains("Authorization: Bearer", text, StringComparison.Ordinal);
            Assert.DoesNotContain("loop_", text, StringComparison.Ordinal);
        }

        // With a user's token (as in the README's scrape config), from anywhere.
        remote.DefaultRequestHeaders.Authorization = new("Bearer", loop.LocalToken);
        using (var allowed = await remote.GetAsync("/metrics"))
        {
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
            Assert.Contains(Parse(await allowed.Content.ReadAsStringAsync()), s => s.Name == "loop_container_pool_capacity");
        }

        // A channel's token is an agent's: the whole node's numbers are not for it.
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        remote.DefaultRequestHeaders.Authorization = new("Bearer", (string)(await loop.GetObjectAsync($"/api/channels/{channel}/token"))["token"]!);
        using (var forbidden = await remote.GetAsync("/metrics"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        }

        // A proxy on this machine relays others: what it forwards is not local.
        using var local = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        using (var direct = await local.GetAsync("/metrics"))
        {
            Assert.Equal(HttpStatusCode.OK, direct.StatusCode);
        }
        using var relayed = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        relayed.Headers.Add("X-Forwarded-For", "203.0.113.9");
        using (var proxied = await local.SendAsync(relayed))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, proxied.StatusCode);
        }
    }

    private static IPAddress NonLoopbackAddress() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))
        ?? throw new InvalidOperationException("this test needs an IPv4 address of this machine that is not loopback (eth0, or Docker's docker0)");

    private sealed record Sample(string Name, Dictionary<string, string> Labels, double Value);

    /// <summary>Prometheus' text exposition format: # lines, blank lines, and samples
    /// <c>name{label="value",...} value [timestamp]</c>; anything else fails the test.</summary>
    private static List<Sample> Parse(string exposition)
    {
        var samples = new List<Sample>();
        foreach (var line in exposition.Split('\n'))
        {
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }
            var match = SampleLine().Match(line);
            Assert.True(match.Success, $"not a sample line of the Prometheus text format: {line}");
            var labels = match.Groups["label"].Captures.Select((c, i) => (c.Value, match.Groups["labelValue"].Captures[i].Value))
                .ToDictionary(l => l.Item1, l => l.Item2, StringComparer.Ordinal);
            var value = match.Groups["value"].Value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                var number => double.Parse(number, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            samples.Add(new Sample(match.Groups["name"].Value, labels, value));
        }
        return samples;
    }

    /// <summary>The value of the one sample with this name and these labels (it may have others).</summary>
    private static double Value(List<Sample> samples, string name, params (string Label, string Value)[] labels)
    {
        var found = samples.Where(s => s.Name == name && labels.All(l => s.Labels.GetValueOrDefault(l.Label) == l.Value)).ToList();
        Assert.True(found.Count == 1, $"{found.Count} samples of {name} {string.Join(",", labels)}; the metrics have: " +
            string.Join(", ", samples.Select(s => s.Name).Where(n => n.StartsWith("loop_", StringComparison.Ordinal)).Distinct()));
        return found[0].Value;
    }

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?:(?<label>[a-zA-Z_][a-zA-Z0-9_]*)="(?<labelValue>(?:[^"\\]|\\.)*)",?)*\})? (?<value>[-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))(?: -?[0-9]+)?$""")]
    private static partial Regex SampleLine();
}
