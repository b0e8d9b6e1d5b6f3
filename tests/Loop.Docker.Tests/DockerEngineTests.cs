namespace Loop.Docker.Tests;

using System.Text;
using Loop.Domain.Agents;
using Loop.Runtime;
using Microsoft.Extensions.Logging;

/// <summary>What `loop serve` reports about the engine (health) and the agent image (status, build log),
/// and the engine reached the ways DOCKER_HOST can name it.</summary>
[Collection(DockerCollection.Name)]
public sealed class DockerEngineTests(DockerFixture docker)
{
    private static readonly IReadOnlyDictionary<string, string> NoArgs = new Dictionary<string, string>();

    private static DockerEngineState State(DockerEngine engine, string image, string dockerfile, ListLogger<DockerEngineState> log) =>
        new(engine, image, new AgentImageSource(new Dictionary<string, byte[]> { ["Dockerfile"] = Encoding.UTF8.GetBytes(dockerfile) }, "test files", null),
            NoArgs, TimeProvider.System, log);

    [Fact]
    public async Task An_image_built_from_the_users_files_is_built_again_when_they_change_and_only_then()
    {
        var image = $"loop-docker-test-home:{Guid.NewGuid():N}";
        // Words of this run only: the engine's build cache would skip a RUN step it has seen.
        var first = $"first edition {Guid.NewGuid():N}";
        var second = $"second edition {Guid.NewGuid():N}";
        var dir = Directory.CreateTempSubdirectory("loop-container-").FullName;
        await File.WriteAllTextAsync(Path.Combine(dir, "Dockerfile"), "FROM loop-test-base:latest\nCOPY tools/note.txt /etc/loop-note\nRUN cat /etc/loop-note\n");
        Directory.CreateDirectory(Path.Combine(dir, "tools"));
        await File.WriteAllTextAsync(Path.Combine(dir, "tools", "note.txt"), first);
        async Task<ListLogger<DockerEngineState>> StartAsync()
        {
            var log = new ListLogger<DockerEngineState>();
            var state = new DockerEngineState(docker.Engine, image, AgentImageSource.From(dir, NoArgs), NoArgs, TimeProvider.System, log);
            Assert.True(await state.WaitForImageAsync(CancellationToken.None), string.Join("\n", log.Lines));
            return log;
        }
        try
        {
            Assert.Contains($"Building {image}: {first}", (await StartAsync()).Lines);
            Assert.DoesNotContain((await StartAsync()).Lines, l => l.StartsWith("Building", StringComparison.Ordinal));

            await File.WriteAllTextAsync(Path.Combine(dir, "tools", "note.txt"), second);
            var rebuilt = await StartAsync();
            Assert.Contains(rebuilt.Lines, l => l.StartsWith($"Agent image {image} was built from other files than those in {dir}", StringComparison.Ordinal));
            Assert.Contains($"Building {image}: {second}", rebuilt.Lines);
            var (_, label) = await DockerFixture.DockerCliAsync("image", "inspect", "-f", $"{{{{index .Config.Labels \"{AgentImageSource.HashLabel}\"}}}}", image);
            Assert.Equal(AgentImageSource.From(dir, NoArgs).Hash, label.Trim());
        }
        finally
        {
            await DockerFixture.DockerCliAsync("rmi", "-f", image);
        }
    }

    [Fact]
    public async Task Health_reports_the_engine_reachable_speaking_the_servers_api_version()
    {
        var (_, serverApi) = await DockerFixture.DockerCliAsync("version", "--format", "{{.Server.APIVersion}}");
        var server = Version.Parse(serverApi.Trim());
        var expected = (server < DockerEngine.MaxApiVersion ? server : DockerEngine.MaxApiVersion).ToString();
        var log = new ListLogger<DockerEngineState>();
        var state = State(docker.Engine, DockerFixture.TestImage, "", log);

        Assert.True(await state.CheckAsync(CancellationToken.None));

        Assert.True(state.Health.Reachable);
        Assert.Equal(expected, state.Health.ApiVersion);
        Assert.Contains(log.Lines, l => l == $"Docker engine at {docker.Engine.Endpoint} is reachable (API {expected})");
    }

    [Fact]
    public async Task Health_reports_an_unreachable_engine_with_its_endpoint_and_the_reason()
    {
        using var engine = new DockerEngine(new DockerEndpoint("unix:///tmp/loop-no-docker-here.sock"));
        var state = State(engine, DockerFixture.TestImage, "", new ListLogger<DockerEngineState>());

        Assert.False(await state.CheckAsync(CancellationToken.None));

        Assert.False(state.Health.Reachable);
        Assert.Equal("unix:///tmp/loop-no-docker-here.sock", state.Health.Endpoint);
        Assert.Equal("Docker engine not reachable at unix:///tmp/loop-no-docker-here.sock: no such socket", state.Health.Error);
    }

    [Fact]
    public async Task Build_reports_progress_and_a_present_image_is_not_built_again()
    {
        Assert.Contains(docker.BuildOutput, line => line.StartsWith("Step 1/3 : FROM loop-test-base:latest", StringComparison.Ordinal));
        Assert.Contains(docker.BuildOutput, line => line.Contains("Successfully tagged " + DockerFixture.TestImage, StringComparison.Ordinal));
        var log = new ListLogger<DockerEngineState>();
        var state = State(docker.Engine, DockerFixture.TestImage, "FROM loop-no-such-base:latest\n", log);

        Assert.True(await state.WaitForImageAsync(CancellationToken.None));

        Assert.Equal("present", state.Health.ImageStatus);
        Assert.DoesNotContain(log.Lines, l => l.StartsWith("Building", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_missing_agent_image_is_built_from_the_given_files_with_its_progress_logged()
    {
        var image = $"loop-docker-test-built:{Guid.NewGuid():N}";
        var log = new ListLogger<DockerEngineState>();
        var state = State(docker.Engine, image, "FROM loop-test-base:latest\nRUN echo built-by-loop\n", log);
        try
        {
            Assert.True(await state.WaitForImageAsync(CancellationToken.None));

            Assert.Equal("present", state.Health.ImageStatus);
            Assert.Contains(log.Lines, l => l == $"Building {image}: Step 1/2 : FROM loop-test-base:latest");
            Assert.Contains(log.Lines, l => l == $"Building {image}: built-by-loop");
            Assert.Equal(0, (await DockerFixture.DockerCliAsync("image", "inspect", image)).ExitCode);
        }
        finally
        {
            await DockerFixture.DockerCliAsync("rmi", "-f", image);
        }
    }

    [Fact]
    public async Task A_failing_build_step_is_the_image_status_in_the_daemons_words()
    {
        var log = new ListLogger<DockerEngineState>();
        var state = State(docker.Engine, $"loop-docker-test-broken:{Guid.NewGuid():N}", "FROM loop-test-base:latest\nRUN echo building; exit 7\n", log);

        Assert.False(await state.WaitForImageAsync(CancellationToken.None));

        Assert.StartsWith("failed: ", state.Health.ImageStatus);
        Assert.Contains("returned a non-zero code: 7", state.Health.ImageStatus);
        Assert.Contains(log.Lines, l => l.EndsWith(": building", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Build_args_reach_the_build()
    {
        var files = new Dictionary<string, byte[]> { ["Dockerfile"] = "FROM loop-test-base:latest\nARG GREETING=unset\nRUN echo \"greeting=$GREETING\"\n"u8.ToArray() };
        var progress = new List<string>();

        await new ImageBuilder(docker.Engine).BuildAsync("loop-docker-test-args:latest", files, new Dictionary<string, string> { ["GREETING"] = "hola" }, progress.Add, CancellationToken.None);

        Assert.Contains("greeting=hola", progress);
        await DockerFixture.DockerCliAsync("rmi", "-f", "loop-docker-test-args:latest");
    }

    [Fact]
    public async Task Over_plain_tcp_a_run_works_as_over_the_socket()
    {
        await using var proxy = new EngineTcpProxy(docker.Engine.Endpoint);
        using var engine = DockerEngine.From(() => DockerEndpoint.Resolve(
            name => name == "DOCKER_HOST" ? $"tcp://127.0.0.1:{proxy.Port}" : null, "/nonexistent"));

        var exit = await RunAsync(engine, DockerFixture.Spec(["sh", "-c", "echo \"key=$KEY\"; cat; echo to-stderr >&2"],
            secrets: new Dictionary<string, string> { ["KEY"] = "k-1" }, input: "hello\nworld\n"));

        Assert.Equal($"tcp://127.0.0.1:{proxy.Port}", engine.Endpoint);
        Assert.Equal(0, exit.Exit.ExitCode);
        Assert.Equal(["key=k-1", "hello", "world"], exit.Lines);
        Assert.Equal("to-stderr\n", exit.Exit.StandardErrorTail);
    }

    [Fact]
    public async Task Over_TLS_the_engines_certificate_is_checked_and_ours_presented()
    {
        using var certificates = new TestCertificates("loop-test-ca");
        using var server = certificates.Issue("localhost", server: true);
        await using var proxy = new EngineTcpProxy(docker.Engine.Endpoint, server, certificates.Authority);
        var certPath = certificates.WriteClientFiles(certificates.Authority);
        using var engine = DockerEngine.From(() => DockerEndpoint.Resolve(name => name switch
        {
            "DOCKER_HOST" => $"tcp://localhost:{proxy.Port}",
            "DOCKER_TLS_VERIFY" => "1",
            "DOCKER_CERT_PATH" => certPath,
            _ => null,
        }, "/nonexistent"));

        var exit = await RunAsync(engine, DockerFixture.Spec(["cat"], input: "over tls\n"));

        Assert.Equal(0, exit.Exit.ExitCode);
        Assert.Equal(["over tls"], exit.Lines);
    }

    [Fact]
    public async Task Over_TLS_an_engine_with_a_certificate_from_another_authority_or_for_another_name_is_refused()
    {
        using var ours = new TestCertificates("loop-test-ca");
        using var theirs = new TestCertificates("someone-elses-ca");
        using var foreign = theirs.Issue("localhost", server: true);
        using var misnamed = ours.Issue("not-localhost.example", server: true);
        var certPath = ours.WriteClientFiles(ours.Authority);

        foreach (var certificate in new[] { foreign, misnamed })
        {
            await using var proxy = new EngineTcpProxy(docker.Engine.Endpoint, certificate, ours.Authority);
            using var engine = new DockerEngine(new DockerEndpoint($"tcp://localhost:{proxy.Port}", certPath));

            var error = await Assert.ThrowsAsync<DockerUnavailableException>(() => engine.PingAsync(CancellationToken.None));

            Assert.StartsWith($"Docker engine not reachable at tcp://localhost:{proxy.Port}: ", error.Message);
        }
    }

    private async Task<(SandboxExit Exit, List<string> Lines)> RunAsync(DockerEngine engine, SandboxSpec spec)
    {
        var lines = new List<string>();
        var exit = await docker.Sandbox(engine: engine).RunAsync(spec, line => { lines.Add(line); return ValueTask.CompletedTask; }, null, CancellationToken.None);
        return (exit, lines);
    }
}

/// <summary>Keeps each formatted log line, as the daemon's log shows it.</summary>
public sealed class ListLogger<T> : ILogger<T>
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lines)
        {
            _lines.Add(formatter(state, exception));
        }
    }
}
