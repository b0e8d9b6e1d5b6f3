namespace Loop.Integration.Tests;

using Loop.Testing;

using System.Text.Json.Nodes;

/// <summary>Mounts and secrets: what the agent can see, and what nobody else can.</summary>
public sealed class IsolationTests
{
    [Fact]
    public async Task Mounts_are_path_preserving_honour_ro_skip_missing_resolve_project_relative_and_refuse_outside_the_project()
    {
        var shared = AgentUser.CreateDir("loop-shared-");
        var readOnly = AgentUser.CreateDir("loop-ro-");
        await File.WriteAllTextAsync(Path.Combine(readOnly, "fixed.txt"), "read-only content");
        var outside = AgentUser.CreateDir("loop-outside-");
        await File.WriteAllTextAsync(Path.Combine(outside, "secret.txt"), "outside content");
        var project = AgentUser.CreateDir("loop-proj-");
        Directory.CreateDirectory(Path.Combine(project, "data"));
        await File.WriteAllTextAsync(Path.Combine(project, "data", "input.txt"), "project data");
        Directory.CreateDirectory(Path.Combine(project, ".loop"));
        await File.WriteAllTextAsync(Path.Combine(project, ".loop", "config.json"), $$"""
            {
              // project mounts: one relative, one outside the project (refused)
              "mounts": ["./data:/mnt/data:ro", "{{outside}}:/mnt/outside"],
            }
            """);

        await using var loop = await LoopDaemon.StartAsync(new JsonObject
        {
            ["mounts"] = new JsonArray($"{shared}:/mnt/shared", $"{readOnly}:/mnt/ro:ro", "/does/not/exist:/mnt/missing"),
        });
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;
        await loop.PostMessageAsync(id,
            "[[write /mnt/shared/out.txt written by agent]] [[write /mnt/ro/new.txt nope]] [[read /mnt/ro/fixed.txt]] " +
            $"[[read /mnt/data/input.txt]] [[read /mnt/outside/secret.txt]] [[read /mnt/missing]] [[write {project}/result.txt in project]]");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        var reply = (string)run["reply"]!;

        Assert.Equal("succeeded", (string)run["status"]!);
        Assert.Equal("written by agent", (await File.ReadAllTextAsync(Path.Combine(shared, "out.txt"))).Trim());
        Assert.False(File.Exists(Path.Combine(readOnly, "new.txt")));
        Assert.Contains("read-only content", reply);
        Assert.Contains("project data", reply);
        Assert.DoesNotContain("outside content", reply);
        Assert.Equal("in project", (await File.ReadAllTextAsync(Path.Combine(project, "result.txt"))).Trim());
        Assert.Contains("/does/not/exist", loop.Output); // the skipped mount is logged
        Assert.Contains(outside, loop.Output);           // and so is the refused one
    }

    [Fact]
    public async Task A_project_that_holds_the_loop_home_does_not_show_the_agent_the_store_or_the_daemons_secrets()
    {
        var project = AgentUser.CreateDir("loop-proj-");
        var home = Directory.CreateDirectory(Path.Combine(project, ".loop")).FullName;
        // Such a project (one at ~, say) must be allowed explicitly; registered through a symlink, it
        // is still recognised as holding the home.
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["allowed_project_dirs"] = new JsonArray(project) }, home: home);
        var link = Path.Combine(Directory.CreateTempSubdirectory("loop-links-").FullName, "project");
        File.CreateSymbolicLink(link, project);
        var id = (string)(await loop.CreateChannelAsync(link))["id"]!;

        await loop.PostMessageAsync(id,
            $"[[read {home}/secrets/local-token]] [[read {home}/loop.db]] [[write {project}/seen.txt project is visible]] " +
            """[[mcp list_tasks {}]]""");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        var reply = (string)run["reply"]!;

        Assert.True((string)run["status"]! == "succeeded", run.ToJsonString());
        Assert.Contains($"read {home}/secrets/local-token failed", reply);
        Assert.Contains($"read {home}/loop.db failed", reply);
        Assert.Equal("project is visible", (await File.ReadAllTextAsync(Path.Combine(project, "seen.txt"))).Trim());
        // The channel's own pieces under the home (MCP config, API socket) still show through.
        Assert.DoesNotContain("mcp error", reply);
    }

    [Fact]
    public async Task Secrets_reach_the_agent_but_not_docker_inspect_the_store_or_the_logs()
    {
        const string secret = "sk-ant-test-7f3b9c2d4e5f";
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["anthropic_api_key"] = secret },
            new Dictionary<string, string?> { ["CLAUDE_CODE_OAUTH_TOKEN"] = "oauth-test-token-91a8b7" });
        var id = (string)(await loop.CreateChannelAsync())["id"]!;

        await loop.PostMessageAsync(id, "[[env ANTHROPIC_API_KEY]] [[env CLAUDE_CODE_OAUTH_TOKEN]] [[sleep 4]]");
        var running = await loop.WaitForRunningAsync(id);
        string[] containers = [];
        for (var i = 0; i < 100 && containers.Length == 0; i++)
        {
            containers = await DockerCli.ContainersAsync($"loop.run={running["id"]}");
            await Task.Delay(50);
        }
        var inspect = await DockerCli.RunAsync(["inspect", .. containers]);
        Assert.Contains("\"ReadonlyRootfs\": true", inspect);
        Assert.Contains("\"ALL\"", inspect);
        Assert.Contains("no-new-privileges", inspect);
        Assert.DoesNotContain(secret, inspect);
        Assert.DoesNotContain("oauth-test-token-91a8b7", inspect);

        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        var reply = (string)run["reply"]!;
        Assert.Contains($"env ANTHROPIC_API_KEY is set (length {secret.Length})", reply);
        Assert.Contains("env CLAUDE_CODE_OAUTH_TOKEN is set", reply);
        Assert.DoesNotContain(secret, loop.Output);
        Assert.DoesNotContain("oauth-test-token-91a8b7", loop.Output);
        foreach (var file in Directory.GetFiles(loop.Home, "loop.db*"))
        {
            var bytes = await File.ReadAllBytesAsync(file);
            Assert.DoesNotContain(secret, System.Text.Encoding.UTF8.GetString(bytes));
        }
    }
}
