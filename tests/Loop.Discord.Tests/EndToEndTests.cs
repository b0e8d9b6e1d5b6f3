namespace Loop.Discord.Tests;

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

/// <summary>
/// The whole path as a user meets it: a real <c>loop serve</c> connected to the Discord double, a
/// MESSAGE_CREATE from the gateway, a run in a real container (the agent test image with the
/// <c>claude</c> test double), and the reply POSTed to Discord.
/// </summary>
public sealed class EndToEndTests
{
    private const string TestImage = "loop-agent-test:latest";

    [Fact]
    public async Task A_mention_runs_the_agent_in_a_container_and_the_reply_comes_back_to_discord()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var loop = await LoopServe.StartAsync(new JsonObject
        {
            ["container_image"] = TestImage,
            ["discord_token"] = DiscordDouble.Token,
            ["discord_app_id"] = DiscordDouble.AppId,
            ["discord_api_url"] = discord.ApiUrl,
            ["discord_gateway_url"] = discord.GatewayUrl,
        });
        var gateway = await discord.WaitForReadyAsync();
        await Eventually.WaitAsync(() => discord.Calls.Any(c => c.Method == "PUT"), "command registration", TimeSpan.FromSeconds(30));

        var mention = discord.MessageCreate(DiscordDouble.GeneralChannel,
            $"<@{DiscordDouble.BotId}> [[reply hello from the container]] [[pwd]]", mentionsBot: true);
        await gateway.DispatchAsync("MESSAGE_CREATE", mention);
        JsonNode reply;
        try
        {
            reply = (await discord.WaitForMessagesAsync(DiscordDouble.GeneralChannel, 1, TimeSpan.FromSeconds(120))).Single();
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no reply reached Discord; loop serve said:\n{loop.Output}");
        }

        var content = (string)reply["content"]!;
        Assert.Contains("hello from the container", content);
        Assert.Equal((string?)mention["id"], (string?)reply["message_reference"]!["message_id"]);
        Assert.Contains(discord.Calls, c => c.Path == $"channels/{DiscordDouble.GeneralChannel}/typing");

        var health = JsonNode.Parse(await loop.Http.GetStringAsync("/api/health"))!;
        Assert.Contains(health["chats"]!.AsArray(), c => (string?)c!["platform"] == "discord" && ((string?)c["status"])!.StartsWith("connected", StringComparison.Ordinal));
        var channels = JsonNode.Parse(await loop.Http.GetStringAsync("/api/channels"))!.AsArray();
        var channel = channels.Single(c => (string?)c!["name"] == "general")!;
        var runs = JsonNode.Parse(await loop.Http.GetStringAsync($"/api/channels/{channel["id"]}/runs"))!.AsArray();
        var run = runs.Single()!;
        Assert.Equal("succeeded", (string?)run["status"]);
        Assert.False(string.IsNullOrEmpty((string?)run["container_id"]));
    }

    /// <summary>A <c>loop serve</c> process with a fresh LOOP_HOME, as a user runs it.</summary>
    private sealed class LoopServe : IAsyncDisposable
    {
        private readonly StringBuilder _output = new();
        private readonly Process _process;
        private readonly string _home;

        private LoopServe(Process process, string home, int port)
        {
            _process = process;
            _home = home;
            Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        }

        public HttpClient Http { get; }

        /// <summary>Everything the daemon printed so far.</summary>
        public string Output
        {
            get { lock (_output) { return _output.ToString(); } }
        }

        public static async Task<LoopServe> StartAsync(JsonObject config)
        {
            var home = Directory.CreateTempSubdirectory("loop-discord-e2e-").FullName;
            var port = FreePort();
            config["api_addr"] = $"127.0.0.1:{port}";
            config["log_level"] = "debug";
            await File.WriteAllTextAsync(Path.Combine(home, "config.json"), config.ToJsonString());
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add(LoopDll());
            start.ArgumentList.Add("serve");
            start.Environment["LOOP_HOME"] = home;
            if (ContainerBinary() is { } binary)
            {
                start.Environment["LOOP_CONTAINER_BINARY"] = binary;
            }
            var process = Process.Start(start) ?? throw new InvalidOperationException("could not start loop serve");
            var serve = new LoopServe(process, home, port);
            process.OutputDataReceived += (_, e) => serve.Append(e.Data);
            process.ErrorDataReceived += (_, e) => serve.Append(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();

            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"loop serve exited with {process.ExitCode}:\n{serve.Output}");
                }
                try
                {
                    using var response = await serve.Http.GetAsync("/api/health");
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        return serve;
                    }
                }
                catch (HttpRequestException)
                {
                }
                await Task.Delay(50);
            }
            throw new TimeoutException($"loop serve did not answer /api/health within 30 s:\n{serve.Output}");
        }

        /// <summary>loop.dll in Loop.Cli's build output, of the same configuration as this test assembly.</summary>
        private static string LoopDll()
        {
            var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
            var configuration = output.Parent!.Name;
            var root = RepositoryRoot();
            return Path.Combine(root, "src", "Loop.Cli", "bin", configuration, output.Name, "loop.dll");
        }

        private static string RepositoryRoot()
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

        /// <summary>The linux loop binary that containers run for `loop mcp` (`make build`), when built.</summary>
        private static string? ContainerBinary()
        {
            var candidate = Path.Combine(RepositoryRoot(), "artifacts", "bin", "loop");
            return File.Exists(candidate) ? candidate : null;
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (_output)
                {
                    _output.AppendLine(line);
                }
            }
        }

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                Process.Start("kill", ["-TERM", _process.Id.ToString()])?.WaitForExit();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await _process.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill();
                }
            }
            _process.Dispose();
            Http.Dispose();
            try
            {
                Directory.Delete(_home, recursive: true);
            }
            catch (Exception error) when (error is IOException or UnauthorizedAccessException)
            {
            }
        }
    }
}
