namespace Loop.Integration.Tests;

using Loop.Testing;

using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

/// <summary>Health, and bad input answered with problem details that say what to fix.</summary>
public sealed class ApiTests
{
    [Fact]
    public async Task Health_reports_version_store_engine_image_and_queue()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var health = await loop.GetObjectAsync("/api/health");

        Assert.Equal("ok", (string)health["status"]!);
        Assert.False(string.IsNullOrEmpty((string?)health["version"]));
        Assert.True((double)health["uptime_seconds"]! >= 0);
        Assert.Equal("docker", (string)health["runner"]!);
        Assert.True((bool)health["store"]!["ok"]!);
        Assert.True((bool)health["docker"]!["reachable"]!);
        Assert.StartsWith("1.", (string)health["docker"]!["api_version"]!);
        Assert.Equal(LoopDaemon.TestImage, (string)health["docker"]!["image"]!);
        Assert.Equal("present", (string)health["docker"]!["image_status"]!);
        Assert.Equal(3, (int)health["queue"]!["capacity"]!);
        Assert.Equal(0, (int)health["queue"]!["running"]!);
        // The test daemon has no Claude credentials: agents could not reach Claude.
        Assert.Contains(health["warnings"]!.AsArray(), w => ((string)w!).StartsWith("neither anthropic_api_key nor claude_code_oauth_token is set", StringComparison.Ordinal));

        // Uptime checks probe with HEAD, without a token.
        using var anonymous = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        using var head = await anonymous.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/api/health"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
    }

    [Fact]
    public async Task Malformed_global_mounts_are_warnings_from_the_start()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["mounts"] = new JsonArray("relative/dir:/data", "/no/such/loop-dir:/data2:ro", "/tmp") });
        var warnings = (await loop.GetObjectAsync("/api/health"))["warnings"]!.AsArray().Select(w => (string)w!).ToList();

        Assert.Contains("mount 'relative/dir:/data': the host path must be absolute or start with ~/ (ignored) (from config.json's mounts)", warnings);
        Assert.Contains(warnings, w => w.StartsWith("mount '/no/such/loop-dir:/data2:ro': host path /no/such/loop-dir does not exist", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.StartsWith("mount '/tmp' is malformed", StringComparison.Ordinal));
        Assert.Contains("(from config.json's mounts)", loop.Output);
    }

    [Fact]
    public async Task An_agent_image_that_cannot_be_built_from_the_users_files_is_a_warning_in_health()
    {
        // The user's own build directory is what the image is built from; this one fails.
        var home = Directory.CreateTempSubdirectory("loop-it-").FullName;
        Directory.CreateDirectory(Path.Combine(home, "container"));
        await File.WriteAllTextAsync(Path.Combine(home, "container", "Dockerfile"), "FROM loop-test-base:latest\nRUN echo my-own-step; exit 3\n");
        var image = $"loop-it-broken:{Guid.NewGuid():N}";
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["container_image"] = image }, home: home);

        JsonObject health = [];
        await Eventually.WaitAsync(async () =>
        {
            health = await loop.GetObjectAsync("/api/health");
            return ((string)health["docker"]!["image_status"]!).StartsWith("failed", StringComparison.Ordinal);
        }, "the image build to fail", TimeSpan.FromSeconds(120));
        Assert.Equal("degraded", (string)health["status"]!);
        Assert.Contains(health["warnings"]!.AsArray(), w => ((string)w!).StartsWith($"the agent image {image} could not be built", StringComparison.Ordinal)
            && ((string)w!).Contains("non-zero code: 3", StringComparison.Ordinal));
        Assert.Contains("my-own-step", loop.Output);
        Assert.Contains($"building it from {Path.Combine(home, "container")}", loop.Output);
    }

    [Fact]
    public async Task Anonymous_health_says_only_what_is_up_and_users_get_the_details()
    {
        // An engine that is not there: the anonymous answer shows that it is down, not why.
        await using var loop = await LoopDaemon.StartAsync(environment: new Dictionary<string, string?> { ["DOCKER_HOST"] = "unix:///tmp/no-docker-here.sock" });
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        await loop.PostMessageAsync(channel, "hello");
        await loop.WaitForFinishedRunsAsync(channel, 1);
        var full = await loop.GetObjectAsync("/api/health");
        Assert.NotEmpty(full["recent_problems"]!.AsArray());

        using var anonymous = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        using var response = await anonymous.GetAsync("/api/health");
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var health = JsonNode.Parse(text)!.AsObject();
        Assert.Equal(["status", "components"], health.Select(p => p.Key));
        Assert.Equal("degraded", (string)health["status"]!);
        Assert.Equal("""{"docker":"degraded","store":"up"}""", health["components"]!.ToJsonString());
        foreach (var secret in new[] { loop.Home, "no-docker-here", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), "pid", "version", "warnings" })
        {
            Assert.DoesNotContain(secret, text);
        }
        // A channel token is no user: the same short answer.
        var token = (string)(await loop.GetObjectAsync($"/api/channels/{channel}/token"))["token"]!;
        anonymous.DefaultRequestHeaders.Authorization = new("Bearer", token);
        Assert.Equal(text, await anonymous.GetStringAsync("/api/health"));

        // Users see everything, the same components included.
        Assert.Equal(health["components"]!.ToJsonString(), full["components"]!.ToJsonString());
        Assert.Equal(Path.Combine(loop.Home, "loop.db"), (string)full["store"]!["location"]!);
        Assert.Contains("no-docker-here", (string)full["docker"]!["error"]!);
        Assert.True((int)full["pid"]! > 0);
        Assert.NotEmpty(full["warnings"]!.AsArray());
    }

    [Fact]
    public async Task Bad_input_gets_problem_details_naming_the_field()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var id = (string)(await loop.CreateChannelAsync())["id"]!;

        var missingAuthor = await ProblemAsync(await loop.Http.PostAsJsonAsync($"/api/channels/{id}/messages", new { content = "hi" }), HttpStatusCode.BadRequest);
        Assert.Contains("author", missingAuthor["errors"]!.AsObject().Select(e => e.Key));

        var malformed = await ProblemAsync(await loop.Http.PostAsync($"/api/channels/{id}/messages",
            new StringContent("{\"author\": \"a\", \"content\": ", Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest);
        Assert.Contains("not valid JSON", (string)malformed["detail"]!);

        var relative = await ProblemAsync(await loop.Http.PostAsJsonAsync("/api/channels", new { dir_path = "projects/x" }), HttpStatusCode.BadRequest);
        Assert.Contains("absolute", (string)relative["detail"]!);

        var unknown = await ProblemAsync(await loop.Http.PostAsJsonAsync("/api/channels/ch_nope/messages", new { author = "a", content = "b" }), HttpStatusCode.NotFound);
        Assert.Contains("ch_nope", (string)unknown["detail"]!);

        await ProblemAsync(await loop.Http.GetAsync("/api/runs/run_nope"), HttpStatusCode.NotFound);
        await ProblemAsync(await loop.Http.GetAsync("/api/nothing-here"), HttpStatusCode.NotFound);

        // Each mistake named in the user's words: the field and what it takes, never a .NET type.
        var said = new List<string>();
        async Task<string> SaysAsync(Task<HttpResponseMessage> call, string field, string expected)
        {
            var problem = await ProblemAsync(await call, HttpStatusCode.BadRequest);
            var detail = (string)problem["detail"]!;
            Assert.Contains(expected, detail);
            Assert.Contains(field, problem["errors"]!.AsObject().Select(e => e.Key));
            said.Add(detail);
            return detail;
        }
        HttpContent Json(string text) => new StringContent(text, Encoding.UTF8, "application/json");
        await SaysAsync(loop.Http.PostAsync("/api/channels", Json("[]")), "body", "the request body must be a JSON object");
        await SaysAsync(loop.Http.PostAsync("/api/channels", Json("{\"dir_path\": 5}")), "dir_path", "dir_path must be text in double quotes");
        await SaysAsync(loop.Http.PostAsync("/api/channels", Json("{\"dir_path\": \"/tm")), "dir_path", "it ends before its objects, arrays and strings are closed");
        await SaysAsync(loop.Http.PostAsync("/api/tasks", Json($"{{\"channel_id\": \"{id}\", \"type\": \"once\", \"schedule\": \"1m\", \"prompt\": \"p\", \"enabled\": \"yes\"}}")),
            "enabled", "enabled must be true or false");
        await SaysAsync(loop.Http.PostAsync("/api/tasks", Json($"{{\"channel_id\": \"{id}\", \"type\": \"loop\", \"prompt\": \"p\", \"max_iterations\": 99999999999}}")),
            "max_iterations", "max_iterations must be a whole number no larger than 2147483647");
        await SaysAsync(loop.Http.GetAsync("/api/channels?limit=99999999999"), "limit", "limit is too large: at most 2147483647");
        await SaysAsync(loop.Http.GetAsync($"/api/channels/{id}/runs?limit=abc"), "limit", "limit must be a whole number (found \"abc\")");
        await SaysAsync(loop.Http.GetAsync($"/api/channels/{id}/messages?after=x"), "after", "after must be a whole number");
        Assert.All(said, detail => Assert.DoesNotMatch(@"System\.|Loop\.Api|Nullable|isFinalBlock|not supported|`1", detail));

        // nothing bad was stored
        Assert.Empty(await loop.GetArrayAsync($"/api/channels/{id}/messages"));
        Assert.DoesNotContain("   at ", loop.Output); // no stack traces for bad input
    }

    [Fact]
    public async Task Without_a_docker_engine_the_daemon_starts_says_so_and_runs_fail_with_a_clear_reason()
    {
        await using var loop = await LoopDaemon.StartAsync(environment: new Dictionary<string, string?> { ["DOCKER_HOST"] = "unix:///tmp/no-docker-here.sock" });
        var health = await loop.GetObjectAsync("/api/health");
        Assert.Equal("degraded", (string)health["status"]!);
        Assert.False((bool)health["docker"]!["reachable"]!);
        Assert.Contains(health["warnings"]!.AsArray(), w => ((string)w!).Contains("runner to process"));
        Assert.Contains("not reachable", loop.Output);

        var id = (string)(await loop.CreateChannelAsync())["id"]!;
        await loop.PostMessageAsync(id, "hello?");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        Assert.Equal("failed", (string)run["status"]!);
        Assert.Contains("no-docker-here.sock", (string)run["error"]!);
        var messages = await loop.GetArrayAsync($"/api/channels/{id}/messages");
        Assert.Equal("system", (string)messages.Last()!["role"]!);
    }

    private static async Task<JsonObject> ProblemAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        using (response)
        {
            Assert.Equal(expected, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = await LoopDaemon.ReadObjectAsync(response, expected);
            Assert.Equal((int)expected, (int)problem["status"]!);
            return problem;
        }
    }
}
