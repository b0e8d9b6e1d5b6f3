namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>The agent as an adversary: from inside its container, through the claude double's
/// <c>[[sh]]</c> directive, it attacks the daemon's endpoint and its own credential; and the unix
/// socket called as an agent would: only channel credentials work there.</summary>
public sealed class ContainerEndpointTests
{
    private const string Password = "correct horse battery";

    [Fact]
    public async Task An_agent_can_neither_replace_the_daemons_socket_nor_change_what_the_daemon_handed_its_run()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = AgentUser.CreateDir("loop-proj-");
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;
        var socketDir = Path.Combine(loop.Home, "run", "agent");
        var runFiles = Path.Combine(loop.Home, "run", "runs");

        await loop.PostMessageAsync(id,
            $"[[sh mv {socketDir}/loop.sock {socketDir}/moved.sock]] [[sh touch {socketDir}/planted.sock]] " +
            $"[[sh for f in {runFiles}/*/mcp-config.json; do echo '{{}}' > $f; done]] [[sh rm -rf {runFiles}/*]] " +
            $"[[sh cat {runFiles}/*/mcp-config.json]] [[mcp list_tasks {{}}]]");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        var reply = (string)run["reply"]!;

        Assert.Equal("succeeded", (string)run["status"]!);
        Assert.Contains("mv: cannot move", reply);
        Assert.Contains("touch: cannot touch", reply);
        Assert.Contains("cannot create", reply);
        Assert.Contains("Read-only file system", reply);
        Assert.Contains("\"mcpServers\"", reply); // the config is as the daemon wrote it
        Assert.DoesNotContain("mcp error", reply);
        Assert.Equal(["loop.sock"], Directory.GetFileSystemEntries(socketDir).Select(Path.GetFileName));
        // What a run was handed is gone with it.
        Assert.Empty(Directory.GetFileSystemEntries(runFiles));

        // The next run still reaches the daemon through the same socket.
        await loop.PostMessageAsync(id, "[[mcp list_tasks {}]]");
        var next = (await loop.WaitForFinishedRunsAsync(id, 2)).Last();
        Assert.Equal("succeeded", (string)next["status"]!);
        Assert.DoesNotContain("mcp error", (string)next["reply"]!);
        Assert.Equal("ok", (string)(await loop.GetObjectAsync("/api/health"))["status"]!);
    }

    [Fact]
    public async Task A_runs_token_is_its_own_and_useless_once_the_run_has_ended()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = AgentUser.CreateDir("loop-proj-");
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;

        await loop.PostMessageAsync(id, "[[sh printf %s \"$LOOP_CHANNEL_TOKEN\" > token-1.txt]] [[mcp list_tasks {}]]");
        var first = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        await loop.PostMessageAsync(id, "[[sh printf %s \"$LOOP_CHANNEL_TOKEN\" > token-2.txt]]");
        await loop.WaitForFinishedRunsAsync(id, 2);

        Assert.DoesNotContain("mcp error", (string)first["reply"]!);
        var stolen = await File.ReadAllTextAsync(Path.Combine(project, "token-1.txt"));
        Assert.StartsWith("loopch.", stolen);
        Assert.NotEqual(stolen, await File.ReadAllTextAsync(Path.Combine(project, "token-2.txt")));
        using var socket = SocketClient.Create(loop, stolen);
        using var tcp = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        tcp.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", stolen);
        Assert.Equal(HttpStatusCode.Unauthorized, (await socket.GetAsync($"/api/tasks?channel_id={id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await tcp.GetAsync($"/api/tasks?channel_id={id}")).StatusCode);
    }

    [Fact]
    public async Task An_operator_revokes_every_token_of_a_channel_at_once_and_no_other()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = AgentUser.CreateDir("loop-proj-");
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;
        var other = (string)(await loop.CreateChannelAsync())["id"]!;
        var scriptToken = (string)(await loop.GetObjectAsync($"/api/channels/{id}/token"))["token"]!;
        var otherToken = (string)(await loop.GetObjectAsync($"/api/channels/{other}/token"))["token"]!;

        await loop.PostMessageAsync(id, "[[sh printf %s \"$LOOP_CHANNEL_TOKEN\" > token.tmp && mv token.tmp token.txt]] [[sleep 120]]");
        var tokenFile = Path.Combine(project, "token.txt");
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (!File.Exists(tokenFile))
        {
            Assert.True(DateTime.UtcNow < deadline, "the agent never wrote its token\n" + loop.Output);
            await Task.Delay(100);
        }
        var runToken = await File.ReadAllTextAsync(tokenFile);
        using var asRun = SocketClient.Create(loop, runToken);
        Assert.Equal(HttpStatusCode.OK, (await asRun.GetAsync($"/api/tasks?channel_id={id}")).StatusCode);

        using var revoke = await loop.Http.DeleteAsync($"/api/channels/{id}/tokens");
        var revoked = await LoopDaemon.ReadObjectAsync(revoke, HttpStatusCode.OK);

        Assert.Equal(2, (int)revoked["revoked"]!);
        Assert.Equal(HttpStatusCode.Unauthorized, (await asRun.GetAsync($"/api/tasks?channel_id={id}")).StatusCode);
        foreach (var (token, expected) in new[] { (scriptToken, HttpStatusCode.Unauthorized), (otherToken, HttpStatusCode.OK) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/tasks?channel_id={(token == otherToken ? other : id)}");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var anonymous = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
            Assert.Equal(expected, (await anonymous.SendAsync(request)).StatusCode);
        }
        var running = await loop.WaitForRunningAsync(id);
        using var cancel = await loop.Http.PostAsync($"/api/runs/{running["id"]}/cancel", null);
        Assert.True(cancel.IsSuccessStatusCode);
    }

    [Fact]
    public async Task Health_says_so_when_the_daemons_socket_is_gone()
    {
        await using var loop = await LoopDaemon.StartAsync(environment: new Dictionary<string, string?> { ["LOOP_RUNNER"] = "process" });
        File.Delete(Path.Combine(loop.Home, "run", "agent", "loop.sock"));

        var health = await loop.GetObjectAsync("/api/health");

        Assert.Equal("degraded", (string)health["status"]!);
        Assert.Contains(health["warnings"]!.AsArray(), w => ((string)w!).Contains("unix socket", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Setup_and_login_through_the_socket_are_refused_and_create_no_account()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        var channelToken = (string)(await loop.GetObjectAsync($"/api/channels/{channel}/token"))["token"]!;
        using var anonymous = SocketClient.Create(loop, token: null);
        using var agent = SocketClient.Create(loop, channelToken);

        foreach (var client in new[] { anonymous, agent })
        {
            // Before any account exists, with the right setup code even: the socket is not the place.
            var setup = await ProblemAsync(await client.PostAsJsonAsync("/api/auth/setup",
                new { username = "agent", password = "owned by the agent", setup_code = loop.SetupCode }), HttpStatusCode.Forbidden);
            Assert.Contains("accepts only the run's channel token", (string)setup["detail"]!);
            await ProblemAsync(await client.PostAsJsonAsync("/api/auth/login", new { username = "agent", password = "owned by the agent" }), HttpStatusCode.Forbidden);
            await ProblemAsync(await client.GetAsync("/api/auth/status"), HttpStatusCode.Forbidden);
            await ProblemAsync(await client.PostAsync("/api/auth/logout", null), HttpStatusCode.Forbidden);
            await ProblemAsync(await client.PostAsJsonAsync("/api/auth/tokens", new { name = "backdoor" }), HttpStatusCode.Forbidden);
            await ProblemAsync(await client.GetAsync("/api/auth/tokens"), HttpStatusCode.Forbidden);
        }

        // No account was made: the setup is still open, with the same code, to the person at the machine.
        var status = await loop.GetObjectAsync("/api/auth/status");
        Assert.True((bool)status["setup_required"]!);
        Assert.NotNull(loop.SetupCode);
        // Anonymous calls there stay refused; the agent's own token still does its work.
        await ProblemAsync(await anonymous.GetAsync("/api/channels"), HttpStatusCode.Unauthorized);
        using var own = await agent.GetAsync($"/api/channels/{channel}");
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
    }

    [Fact]
    public async Task A_users_session_api_token_or_local_token_is_refused_on_the_socket()
    {
        await using var loop = await LoopDaemon.StartAsync();
        using var tcp = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        await LoopDaemon.ReadObjectAsync(await tcp.PostAsJsonAsync("/api/auth/setup", new { username = "admin", password = Password, setup_code = loop.SetupCode }), HttpStatusCode.Created);
        var session = (string)(await LoopDaemon.ReadObjectAsync(await tcp.PostAsJsonAsync("/api/auth/login", new { username = "admin", password = Password }), HttpStatusCode.OK))["token"]!;
        tcp.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", session);
        var apiToken = (string)(await LoopDaemon.ReadObjectAsync(await tcp.PostAsJsonAsync("/api/auth/tokens", new { name = "script" }), HttpStatusCode.Created))["token"]!;

        foreach (var (kind, token) in new[] { ("session", session), ("API token", apiToken), ("local token", loop.LocalToken) })
        {
            using var socket = SocketClient.Create(loop, token);
            foreach (var path in new[] { "/api/channels", "/api/health", "/api/runtime" })
            {
                using var response = await socket.GetAsync(path);
                var text = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{kind} on the socket: GET {path} answered {(int)response.StatusCode} {text}");
                Assert.Contains("accepts only the run's channel token", (string)JsonNode.Parse(text)!["detail"]!);
            }
            using var created = await socket.PostAsJsonAsync("/api/channels", new { dir_path = "/etc" });
            Assert.Equal(HttpStatusCode.Forbidden, created.StatusCode);
            // The same credential works where people call from.
            using var direct = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
            direct.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            Assert.Equal(HttpStatusCode.OK, (await direct.GetAsync("/api/channels")).StatusCode);
        }
        Assert.Empty(await loop.GetArrayAsync("/api/channels"));
    }

    [Fact]
    public async Task Logins_through_the_socket_count_against_the_account_like_guesses_elsewhere()
    {
        await using var loop = await LoopDaemon.StartAsync();
        using var tcp = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        await LoopDaemon.ReadObjectAsync(await tcp.PostAsJsonAsync("/api/auth/setup", new { username = "admin", password = Password, setup_code = loop.SetupCode }), HttpStatusCode.Created);
        using var socket = SocketClient.Create(loop, token: null);

        // The socket is one client: 10 logins a minute, each refused and counted against "admin".
        for (var attempt = 1; attempt <= 10; attempt++)
        {
            await ProblemAsync(await socket.PostAsJsonAsync("/api/auth/login", new { username = "admin", password = $"guess {attempt}" }), HttpStatusCode.Forbidden);
        }
        using (var eleventh = await socket.PostAsJsonAsync("/api/auth/login", new { username = "admin", password = Password }))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, eleventh.StatusCode);
        }

        // From another listener the account's limit is used up as well, even with the right password...
        using var limited = await tcp.PostAsJsonAsync("/api/auth/login", new { username = "admin", password = Password });
        var problem = await ProblemAsync(limited, HttpStatusCode.TooManyRequests);
        Assert.Contains("this account", (string)problem["detail"]!);
        Assert.True(limited.Headers.RetryAfter?.Delta is { TotalSeconds: >= 1 and <= 60 }, $"Retry-After was {limited.Headers.RetryAfter}");
        // ...while other accounts are not held up.
        await ProblemAsync(await tcp.PostAsJsonAsync("/api/auth/login", new { username = "someone", password = Password }), HttpStatusCode.Unauthorized);
    }

    private static async Task<JsonObject> ProblemAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        using (response)
        {
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            return await LoopDaemon.ReadObjectAsync(response, expected);
        }
    }
}
