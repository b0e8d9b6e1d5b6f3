namespace Loop.Cli;

using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Loop.Client;
using Loop.Config;

/// <summary>What the daemon said about itself: its /api/health answer and its process id,
/// or why nothing answered.</summary>
public sealed record DaemonProbeResult(string Url, JsonObject? Health, int? Pid, string? Error)
{
    public bool Answered => Health is not null;
}

/// <summary>Asks a running daemon (as a service or started by hand) how it is.</summary>
public static class DaemonProbe
{
    /// <summary>Asks /api/health. With <paramref name="token"/> (this machine's local token, for its
    /// own daemon only) the answer has the details; without, the daemon tells only what is up.</summary>
    public static async Task<DaemonProbeResult> ProbeAsync(string baseUrl, string socketPath, string? token, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = timeout };
        if (token is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        JsonObject health;
        try
        {
            using var response = await http.GetAsync($"{baseUrl}/api/health", cancellationToken);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (JsonNode.Parse(text) is not JsonObject parsed)
            {
                return new DaemonProbeResult(baseUrl, null, null, $"{baseUrl}/api/health answered {(int)response.StatusCode} without a health report");
            }
            health = parsed;
        }
        catch (HttpRequestException error)
        {
            return new DaemonProbeResult(baseUrl, null, null, $"nothing answers at {baseUrl} ({error.InnerException?.Message ?? error.Message})");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new DaemonProbeResult(baseUrl, null, null, $"{baseUrl} did not answer within {timeout.TotalSeconds:0} s");
        }
        catch (JsonException)
        {
            return new DaemonProbeResult(baseUrl, null, null, $"{baseUrl}/api/health did not answer with JSON: is another program using that port?");
        }

        int? pid = health["pid"] is JsonValue value && value.TryGetValue<int>(out var reported) ? reported : PeerPid(socketPath);
        return new DaemonProbeResult(baseUrl, health, pid, null);
    }

    /// <summary>Polls until the daemon answers or <paramref name="patience"/> runs out.</summary>
    public static async Task<DaemonProbeResult> WaitAsync(string baseUrl, LoopPaths paths, TimeSpan patience, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            var probe = await ProbeAsync(baseUrl, paths.DaemonSocket, LoopApiClient.ReadLocalToken(paths), TimeSpan.FromSeconds(2), cancellationToken);
            if (probe.Answered || DateTime.UtcNow >= deadline)
            {
                return probe;
            }
            await Task.Delay(250, cancellationToken);
        }
    }

    /// <summary>The pid of the process serving the daemon's unix socket, from the kernel's peer
    /// credentials; null when there is no socket or the platform does not say.</summary>
    public static int? PeerPid(string socketPath)
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) || !File.Exists(socketPath))
        {
            return null;
        }

        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            if (OperatingSystem.IsLinux())
            {
                // SOL_SOCKET, SO_PEERCRED: struct ucred { pid_t pid; uid_t uid; gid_t gid; }
                var credentials = new byte[12];
                socket.GetRawSocketOption(1, 17, credentials);
                return BitConverter.ToInt32(credentials, 0);
            }

            // SOL_LOCAL, LOCAL_PEERPID
            var pid = new byte[4];
            socket.GetRawSocketOption(0, 2, pid);
            return BitConverter.ToInt32(pid, 0);
        }
        catch (SocketException)
        {
            return null;
        }
    }

    /// <summary>The health report as aligned "label: value" lines.</summary>
    public static IEnumerable<string> Describe(JsonObject health, int? pid)
    {
        yield return Line("status", Text(health["status"]));
        yield return Line("version", Text(health["version"]));
        yield return Line("node", Text(health["node"]));
        yield return Line("pid", pid?.ToString(CultureInfo.InvariantCulture) ?? "unknown");
        yield return Line("uptime", health["uptime_seconds"] is JsonValue uptime && uptime.TryGetValue<double>(out var seconds) ? Duration(seconds) : "unknown");
        yield return Line("runner", Text(health["runner"]));
        if (health["store"] is JsonObject store)
        {
            var ok = Flag(store["ok"]) ? "ok" : $"failing: {Text(store["error"])}";
            yield return Line("store", $"{ok} ({Text(store["kind"])}, {Text(store["location"])})");
        }
        if (health["docker"] is JsonObject { } unused && Text(unused["image_status"]) == "not used")
        {
            yield return Line("docker", Text(unused["error"]));
        }
        else if (health["docker"] is JsonObject docker)
        {
            var engine = Flag(docker["reachable"])
                ? $"reachable at {Text(docker["endpoint"])} (API {Text(docker["api_version"])})"
                : $"not reachable: {Text(docker["error"])}";
            yield return Line("docker", $"{engine}; image {Text(docker["image"])}: {Text(docker["image_status"])}");
        }
        if (health["queue"] is JsonObject queue)
        {
            yield return Line("runs", $"{Text(queue["running"])} running, {Text(queue["waiting"])} waiting, {Text(queue["capacity"])} at a time");
        }
        yield return Line("channels", $"{Text(health["active_channels"])} active");
        foreach (var warning in health["warnings"] as JsonArray ?? [])
        {
            yield return Line("warning", Text(warning));
        }
        foreach (var problem in (health["recent_problems"] as JsonArray ?? []).OfType<JsonObject>().TakeLast(5))
        {
            yield return Line("problem", $"{Text(problem["at"])} {Text(problem["kind"])}: {Text(problem["text"])}");
        }
    }

    /// <summary>"3d 4h", "2h 5m", "4m 12s", "9s".</summary>
    public static string Duration(double seconds)
    {
        var span = TimeSpan.FromSeconds(Math.Max(0, seconds));
        return span switch
        {
            { TotalDays: >= 1 } => $"{(int)span.TotalDays}d {span.Hours}h",
            { TotalHours: >= 1 } => $"{span.Hours}h {span.Minutes}m",
            { TotalMinutes: >= 1 } => $"{span.Minutes}m {span.Seconds}s",
            _ => $"{span.Seconds}s",
        };
    }

    private static string Line(string label, string value) => $"  {label + ":",-10}{value}";

    private static bool Flag(JsonNode? node) => node is JsonValue value && value.TryGetValue<bool>(out var flag) && flag;

    private static string Text(JsonNode? node) => node switch
    {
        null => "unknown",
        JsonValue value when value.TryGetValue<string>(out var text) => text,
        _ => node.ToJsonString(),
    };
}
