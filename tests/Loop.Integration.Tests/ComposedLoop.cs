namespace Loop.Integration.Tests;

using Loop.Testing;

using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;

/// <summary>
/// Loop itself in a container, started from the repository's compose.yaml the way its README says:
/// a user's home with a Loop home and a projects folder, the settings compose.yaml asks for in the
/// environment, <c>up -d</c>. The image is <see cref="Image"/>, the Dockerfile built on the local
/// base (`make test` builds it). Compose is `docker compose` or, where that plugin is missing (it is
/// not a Debian package), Debian's `docker-compose`, which scripts/provision-test-env.sh installs.
/// </summary>
internal sealed class ComposedLoop : IAsyncDisposable
{
    public const string Image = "loop-daemon-test:latest";

    private readonly string[] _compose;
    private readonly string _root;
    private readonly Dictionary<string, string> _environment;

    private ComposedLoop(string[] compose, string root, int port)
    {
        _compose = compose;
        _root = root;
        Port = port;
        UserHome = Path.Combine(root, "home");
        LoopHome = Path.Combine(UserHome, ".loop");
        Projects = Path.Combine(UserHome, "src");
        var (uid, gid) = Split(AgentUser.Effective);
        _environment = new Dictionary<string, string>
        {
            ["HOME"] = UserHome,
            ["LOOP_HOME"] = LoopHome,
            ["LOOP_PROJECTS"] = Projects,
            ["LOOP_UID"] = uid,
            ["LOOP_GID"] = gid,
            ["DOCKER_GID"] = Split(AgentUser.OwnerOf("/var/run/docker.sock")).Gid,
            ["LOOP_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["LOOP_DAEMON_IMAGE"] = Image,
        };
        ProjectName = "loopcompose" + Guid.NewGuid().ToString("N")[..10];
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
    }

    public int Port { get; }

    /// <summary>The user's home (HOME), which holds the Loop home and the projects.</summary>
    public string UserHome { get; }

    public string LoopHome { get; }

    /// <summary>LOOP_PROJECTS: mounted at its own path, so project dirs must lie under it.</summary>
    public string Projects { get; }

    public string ProjectName { get; }

    /// <summary>The published port, authenticated with the local token once the daemon is up.</summary>
    public HttpClient Http { get; }

    /// <summary>Makes the user's folders (given to <see cref="AgentUser.Effective"/>, whom the daemon
    /// runs as) with <paramref name="config"/> as the Loop home's config.json, then <c>up -d</c>, and
    /// waits for /api/health on the published loopback port. The config's <c>api_addr</c> is the
    /// published port on 127.0.0.1 unless given: that is where the host's <c>loop</c> looks (inside,
    /// compose.yaml has the daemon listen on every interface of its container).</summary>
    public static async Task<ComposedLoop> UpAsync(JsonObject config)
    {
        var inspect = await DockerCli.RunAsync("image", "inspect", "--format", "{{.Id}}", Image);
        Assert.True(inspect.StartsWith("sha256:", StringComparison.Ordinal),
            $"the daemon's test image {Image} is missing: `make test` builds it (or `make docker-daemon DAEMON_BASE=loop-test-base:latest DAEMON_IMAGE={Image}`): {inspect}");

        var root = Directory.CreateTempSubdirectory("loop-compose-").FullName;
        var loop = new ComposedLoop(await ComposeCommandAsync(), root, LoopDaemon.FreePort());
        config["api_addr"] ??= $"127.0.0.1:{loop.Port}";
        Directory.CreateDirectory(loop.LoopHome);
        Directory.CreateDirectory(loop.Projects);
        await File.WriteAllTextAsync(Path.Combine(loop.LoopHome, "config.json"), config.ToJsonString());
        AgentUser.GiveToAgents(root);
        try
        {
            var (exit, output) = await loop.ComposeAsync("up", "-d", "--no-build");
            Assert.True(exit == 0, $"compose up failed ({exit}):\n{output}");
            await loop.WaitForHealthAsync();
        }
        catch
        {
            await loop.DisposeAsync();
            throw;
        }
        return loop;
    }

    /// <summary>A project dir under <see cref="Projects"/>, belonging to the user.</summary>
    public string CreateProject(string name)
    {
        var path = Directory.CreateDirectory(Path.Combine(Projects, name)).FullName;
        AgentUser.GiveToAgents(path);
        return path;
    }

    public async Task<JsonObject> GetObjectAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        return await LoopDaemon.ReadObjectAsync(response, HttpStatusCode.OK);
    }

    public async Task<JsonArray> GetArrayAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!.AsArray();
    }

    /// <summary>The daemon's container.</summary>
    public async Task<string> ContainerIdAsync() =>
        (await DockerCli.RunAsync("ps", "-aq", "--filter", $"label=com.docker.compose.project={ProjectName}")).Trim();

    /// <summary>What the daemon's container printed, for failure messages.</summary>
    public async Task<string> LogsAsync() => await DockerCli.RunAsync("logs", await ContainerIdAsync());

    private async Task WaitForHealthAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            try
            {
                using var response = await Http.GetAsync("/api/health");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    var token = (await File.ReadAllTextAsync(Path.Combine(LoopHome, "secrets", "local-token"))).Trim();
                    Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the composed daemon did not answer /api/health on 127.0.0.1:{Port} within 90 s:\n{await LogsAsync()}");
            }
            await Task.Delay(100);
        }
    }

    private async Task<(int ExitCode, string Output)> ComposeAsync(params string[] args)
    {
        var start = new ProcessStartInfo(_compose[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in _compose.Skip(1).Concat(["-p", ProjectName, "-f", Path.Combine(LoopDaemon.RepositoryRoot, "compose.yaml")]).Concat(args))
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in _environment)
        {
            start.Environment[key] = value;
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    private static async Task<string[]> ComposeCommandAsync()
    {
        foreach (var command in new[] { new[] { "docker", "compose" }, ["docker-compose"] })
        {
            try
            {
                var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                foreach (var arg in command.Skip(1).Append("version"))
                {
                    start.ArgumentList.Add(arg);
                }
                using var process = Process.Start(start)!;
                await process.StandardOutput.ReadToEndAsync();
                await process.StandardError.ReadToEndAsync();
                await process.WaitForExitAsync();
                if (process.ExitCode == 0)
                {
                    return command;
                }
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // Not installed.
            }
        }
        throw new InvalidOperationException("neither `docker compose` nor `docker-compose` works here: scripts/provision-test-env.sh installs Debian's docker-compose");
    }

    private static (string Uid, string Gid) Split(string owner) =>
        owner.Split(':') is [var uid, var gid] ? (uid, gid) : throw new FormatException($"not uid:gid: {owner}");

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        // down stops the daemon (SIGTERM, as `docker compose down` does) and removes its container and network.
        await ComposeAsync("down", "--timeout", "30");
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
