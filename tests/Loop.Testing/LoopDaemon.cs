namespace Loop.Testing;

using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

/// <summary>
/// A real <c>loop serve</c> process on loopback with its own LOOP_HOME, as a user would run it.
/// The agent image is the production Dockerfile built on the local base with the claude test
/// double inside (scripts/provision-test-env.sh).
/// </summary>
public sealed class LoopDaemon : IAsyncDisposable
{
    /// <summary>The agent image the daemon runs (LOOP_TEST_IMAGE overrides it, to try a changed double beside the shared one).</summary>
    public static readonly string TestImage = System.Environment.GetEnvironmentVariable("LOOP_TEST_IMAGE") is { Length: > 0 } image ? image : "loop-agent-test:latest";
    private readonly StringBuilder _output = new();
    private Process? _process;

    private LoopDaemon(string home, int port, Dictionary<string, string?> environment)
    {
        Home = home;
        Port = port;
        Environment = environment;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>The checkout the tests run from (it holds Loop.sln).</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>The self-contained linux `loop` that containers run for `loop mcp` (`make build`).</summary>
    public static string ContainerBinary { get; } = Path.Combine(RepositoryRoot, "artifacts", "bin", "loop");

    /// <summary>loop.dll in Loop.Cli's own build output, of this test assembly's configuration. Run from
    /// there, not from a test's output folder, where other framework references change how its
    /// dependencies resolve.</summary>
    public static string LoopDll { get; } = Path.Combine(RepositoryRoot, "src", "Loop.Cli", "bin",
        new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name, "net10.0", "loop.dll");

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Loop.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("cannot find the repository root (Loop.sln) above " + AppContext.BaseDirectory);
    }

    public string Home { get; }
    public int Port { get; }
    public string ApiUrl => $"http://127.0.0.1:{Port}";

    /// <summary>The daemon's unix socket, as <c>--api-url</c>.</summary>
    public string SocketUrl => $"unix://{Path.Combine(Home, "run", "agent", "loop.sock")}";
    /// <summary>Authenticated with <see cref="LocalToken"/>; remove its Authorization header to call anonymously.</summary>
    public HttpClient Http { get; }

    /// <summary>The machine token the daemon wrote to &lt;home&gt;/secrets/local-token at its last start.</summary>
    public string LocalToken { get; private set; } = "";
    public Dictionary<string, string?> Environment { get; }

    /// <summary>The first-run setup code the daemon wrote to &lt;home&gt;/secrets/setup-code, as a user
    /// reads it; null when there is none (an account exists).</summary>
    public string? SetupCode
    {
        get
        {
            var file = Path.Combine(Home, "secrets", "setup-code");
            return File.Exists(file) ? File.ReadAllText(file).Trim() : null;
        }
    }

    /// <summary>Everything the daemon printed so far (stdout and stderr).</summary>
    public string Output
    {
        get { lock (_output) { return _output.ToString(); } }
    }

    /// <summary>Waits until the daemon has printed a line matching <paramref name="pattern"/>; returns the match.</summary>
    public async Task<System.Text.RegularExpressions.Match> WaitForOutputAsync(System.Text.RegularExpressions.Regex pattern, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            if (pattern.Match(Output) is { Success: true } match)
            {
                return match;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"loop serve did not print {pattern}:\n{Output}");
            }
            await Task.Delay(50);
        }
    }

    /// <summary>Makes a fresh LOOP_HOME with a config.json built from <paramref name="config"/>
    /// (the test image and a free loopback port are filled in unless given; when the tests run as root,
    /// <c>container_user</c> <see cref="AgentUser.ContainerUser"/> unless the key is there, even as
    /// null), then starts the daemon. A <paramref name="silo"/> is written as the home's silo.json.</summary>
    public static async Task<LoopDaemon> StartAsync(JsonObject? config = null, Dictionary<string, string?>? environment = null, string? home = null,
        JsonObject? silo = null)
    {
        home ??= Directory.CreateTempSubdirectory("loop-it-").FullName;
        config ??= [];
        // A test that gives api_addr (every interface, say) still calls the daemon on loopback, at its port.
        var portGiven = config["api_addr"] is not null;
        var port = config["api_addr"] is { } given ? int.Parse(((string)given!).Split(':')[^1], System.Globalization.CultureInfo.InvariantCulture) : FreePort();
        config["api_addr"] ??= $"127.0.0.1:{port}";
        config["container_image"] ??= TestImage;
        config["log_level"] ??= "debug";
        // Tests schedule tasks seconds apart; a test of the minimum sets it.
        config["min_task_interval_sec"] ??= 0;
        if (AgentUser.TestsRunAsRoot && !config.ContainsKey("container_user"))
        {
            // Agents never run as root: a test that means another user (or none: null) says so.
            config["container_user"] = AgentUser.ContainerUser;
        }
        if (silo is not null)
        {
            await File.WriteAllTextAsync(Path.Combine(home, "silo.json"), silo.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        for (var attempt = 1; ; attempt++)
        {
            await File.WriteAllTextAsync(Path.Combine(home, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            var daemon = new LoopDaemon(home, port, environment ?? []);
            try
            {
                await daemon.StartProcessAsync();
                return daemon;
            }
            catch (Exception failed)
            {
                // Nobody will dispose a daemon that never became healthy: it must not live on and load
                // the machine. Its home stays for the caller to read.
                await daemon.KillAsync();
                daemon.Http.Dispose();
                // A free port the test picked can be picked by a test of another process before this daemon
                // binds it (the daemon checks before it starts anything): then another one.
                if (portGiven || attempt == 3 || !failed.Message.Contains("address already in use", StringComparison.Ordinal))
                {
                    throw;
                }
                port = FreePort();
                config["api_addr"] = $"127.0.0.1:{port}";
            }
        }
    }

    /// <summary>Starts another daemon on the same home and store (after <see cref="KillAsync"/>).</summary>
    public async Task RestartAsync()
    {
        await StartProcessAsync();
    }

    private async Task StartProcessAsync()
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(LoopDll);
        start.ArgumentList.Add("serve");
        start.Environment["LOOP_HOME"] = Home;
        start.Environment["LOOP_CONTAINER_BINARY"] = ContainerBinary;
        // Tests poll the API far faster than a person would; a test that checks the limit sets it.
        start.Environment["LOOP_API_RATE_LIMIT_PER_MINUTE"] = "0";
        foreach (var (key, value) in Environment)
        {
            start.Environment[key] = value;
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start loop serve");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        // A restarted daemon issues a new local token; the old one is gone.
        Http.DefaultRequestHeaders.Authorization = null;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"loop serve exited with {process.ExitCode}:\n{Output}");
            }
            try
            {
                using var response = await Http.GetAsync("/api/health");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    // Authenticated as the daemon's own machine (the token the CLI uses), so
                    // tests call the API as the user does.
                    LocalToken = (await File.ReadAllTextAsync(Path.Combine(Home, "secrets", "local-token"))).Trim();
                    Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", LocalToken);
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"loop serve did not answer /api/health within 60 s:\n{Output}");
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    /// <summary>Whether the daemon's process is alive.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>The exit code of the daemon's last process once it has exited, else null.</summary>
    public int? ExitCode => _process is { HasExited: true } process ? process.ExitCode : null;

    /// <summary>Stops the daemon as a service manager does (SIGTERM) and waits until it has exited;
    /// <see cref="RestartAsync"/> starts it again on the same home and port.</summary>
    public async Task StopAsync(TimeSpan? timeout = null)
    {
        if (_process is { HasExited: false } process)
        {
            Process.Start("kill", ["-TERM", process.Id.ToString()])?.WaitForExit();
            using var waiting = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
            try
            {
                await process.WaitForExitAsync(waiting.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"loop serve did not exit within {(timeout ?? TimeSpan.FromSeconds(30)).TotalSeconds} s of SIGTERM:\n{Output}");
            }
        }
    }

    /// <summary>Kills the daemon at once (SIGKILL), as a crash would.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }

    public async Task<JsonObject> CreateChannelAsync(string? dirPath = null)
    {
        using var response = await Http.PostAsJsonAsync("/api/channels", new { dir_path = dirPath });
        return await ReadObjectAsync(response, HttpStatusCode.Created, HttpStatusCode.OK);
    }

    public async Task<JsonObject> PostMessageAsync(string channelId, string content, string author = "alice")
    {
        using var response = await Http.PostAsJsonAsync($"/api/channels/{channelId}/messages", new { author, content });
        return await ReadObjectAsync(response, HttpStatusCode.Accepted);
    }

    public async Task<JsonArray> GetArrayAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!.AsArray();
    }

    public async Task<JsonObject> GetObjectAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        return await ReadObjectAsync(response, HttpStatusCode.OK);
    }

    public async Task<JsonObject> CreateTaskAsync(object body)
    {
        using var response = await Http.PostAsJsonAsync("/api/tasks", body);
        return await ReadObjectAsync(response, HttpStatusCode.Created);
    }

    /// <summary>Polls the task until <paramref name="until"/> holds; returns it.</summary>
    public Task<JsonObject> WaitForTaskAsync(string taskId, Func<JsonObject, bool> until, TimeSpan? timeout = null) =>
        PollAsync(() => GetObjectAsync($"/api/tasks/{taskId}"), until, timeout ?? TimeSpan.FromSeconds(60),
            task => $"task {taskId} never got there: {task}");

    /// <summary>Waits until the channel has <paramref name="count"/> runs that all ended; returns them oldest first.</summary>
    public Task<List<JsonObject>> WaitForFinishedRunsAsync(string channelId, int count, TimeSpan? timeout = null) =>
        PollAsync(async () => (await GetArrayAsync($"/api/channels/{channelId}/runs")).Select(r => r!.AsObject()).Reverse().ToList(),
            runs => runs.Count >= count && runs.All(r => IsFinal((string)r["status"]!)), timeout ?? TimeSpan.FromSeconds(90),
            runs => $"channel {channelId} did not finish {count} run(s): {new JsonArray(runs.Select(r => (JsonNode)r.DeepClone()).ToArray())}");

    /// <summary>Waits until some run of the channel has ended (others may still be queued or running,
    /// as with a task that fires every few seconds); returns the oldest that has.</summary>
    public async Task<JsonObject> WaitForAnyFinishedRunAsync(string channelId, TimeSpan? timeout = null) =>
        (await PollAsync(async () => (await GetArrayAsync($"/api/channels/{channelId}/runs"))
                .Select(r => r!.AsObject()).LastOrDefault(r => IsFinal((string)r["status"]!)),
            finished => finished is not null, timeout ?? TimeSpan.FromSeconds(90), _ => $"no run of {channelId} ended"))!;

    /// <summary>Waits until a run of the channel is running; returns it.</summary>
    public async Task<JsonObject> WaitForRunningAsync(string channelId, TimeSpan? timeout = null) =>
        (await PollAsync(async () => (await GetArrayAsync($"/api/channels/{channelId}/runs"))
                .Select(r => r!.AsObject()).FirstOrDefault(r => (string)r["status"]! == "running"),
            running => running is not null, timeout ?? TimeSpan.FromSeconds(60), _ => $"no run of {channelId} started running"))!;

    /// <summary>Reads until <paramref name="done"/> holds or the deadline passes (then fails with what
    /// was last read and the daemon's output).</summary>
    public async Task<T> PollAsync<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan timeout, Func<T, string> failure)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{failure(value)}\n{Output}");
            }
            await Task.Delay(50);
        }
    }

    public static bool IsFinal(string status) => status is "succeeded" or "failed" or "timed_out" or "cancelled";

    public static async Task<JsonObject> ReadObjectAsync(HttpResponseMessage response, params HttpStatusCode[] expected)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(expected.Contains(response.StatusCode), $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: expected {string.Join("/", expected)}, got {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    public static int FreePort() => Loop.Config.FreePorts.Loopback();

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false } process)
        {
            // SIGTERM, as a service manager stops it; then make sure.
            Process.Start("kill", ["-TERM", process.Id.ToString()])?.WaitForExit();
            if (!process.WaitForExit(10_000))
            {
                process.Kill();
            }
        }
        _process?.Dispose();
        Http.Dispose();
        // Containers write files as root into the home; remove them the same way.
        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
