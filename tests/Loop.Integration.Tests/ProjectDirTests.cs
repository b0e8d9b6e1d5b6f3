namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>Which directories may be a project: where a dir_path really leads (symlinks followed),
/// judged when the channel is registered and again before each run.</summary>
public sealed class ProjectDirTests
{
    private static async Task<string> RefusedAsync(LoopDaemon loop, string dirPath)
    {
        using var response = await loop.Http.PostAsJsonAsync("/api/channels", new { dir_path = dirPath });
        var problem = await LoopDaemon.ReadObjectAsync(response, HttpStatusCode.BadRequest);
        Assert.True(problem["errors"]!.AsObject().ContainsKey("dir_path"), $"dir_path not named in {problem}");
        return (string)problem["detail"]!;
    }

    [Fact]
    public async Task A_dir_path_leading_to_the_loop_home_its_secrets_or_a_system_directory_is_refused_naming_dir_path()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var links = Directory.CreateTempSubdirectory("loop-links-").FullName;
        var toHome = Path.Combine(links, "project");
        File.CreateSymbolicLink(toHome, loop.Home);
        var toSecrets = Path.Combine(links, "notes");
        File.CreateSymbolicLink(toSecrets, Path.Combine(loop.Home, "secrets"));

        Assert.StartsWith($"dir_path {toHome} (which leads to {loop.Home}) is the Loop home", await RefusedAsync(loop, toHome));
        Assert.StartsWith($"dir_path {toSecrets} (which leads to {loop.Home}/secrets) lies inside the Loop home", await RefusedAsync(loop, toSecrets));
        Assert.StartsWith($"dir_path {loop.Home}/secrets lies inside the Loop home", await RefusedAsync(loop, Path.Combine(loop.Home, "secrets")));
        Assert.StartsWith("dir_path /etc is the system directory /etc", await RefusedAsync(loop, "/etc"));
        Assert.StartsWith("dir_path /proc is the system directory /proc", await RefusedAsync(loop, "/proc"));
        Assert.StartsWith("dir_path / is the root of the file system", await RefusedAsync(loop, "/"));
        Assert.Contains("allowed_project_dirs", await RefusedAsync(loop, "/usr/local"));
        Assert.Empty(await loop.GetArrayAsync("/api/channels"));
    }

    [Fact]
    public async Task The_directory_of_the_docker_socket_of_the_current_docker_context_is_refused()
    {
        // A Docker context (as Docker Desktop or rootless Docker sets one) whose socket lies in a
        // directory of the user's: that directory is the engine's, whatever DOCKER_HOST says.
        var scratch = Directory.CreateTempSubdirectory("loop-docker-").FullName;
        var socketDir = Directory.CreateDirectory(Path.Combine(scratch, "desktop")).FullName;
        var dockerConfig = Path.Combine(scratch, "docker-config");
        var meta = Directory.CreateDirectory(Path.Combine(dockerConfig, "contexts", "meta",
            Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("desktop-linux"u8)))).FullName;
        var endpoint = new JsonObject { ["Host"] = $"unix://{socketDir}/docker.sock" };
        await File.WriteAllTextAsync(Path.Combine(meta, "meta.json"),
            new JsonObject { ["Name"] = "desktop-linux", ["Endpoints"] = new JsonObject { ["docker"] = endpoint } }.ToJsonString());
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["runner"] = "process" },
            new Dictionary<string, string?> { ["DOCKER_CONFIG"] = dockerConfig, ["DOCKER_CONTEXT"] = "desktop-linux", ["DOCKER_HOST"] = "" });

        Assert.StartsWith($"dir_path {socketDir} is the Docker socket's directory {socketDir}", await RefusedAsync(loop, socketDir));
        Assert.StartsWith($"dir_path {scratch} holds the Docker socket's directory {socketDir}", await RefusedAsync(loop, scratch));
    }

    [Fact]
    public async Task A_project_dir_swapped_for_a_symlink_to_the_loop_home_fails_its_next_run_before_any_agent_starts()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = Directory.CreateTempSubdirectory("loop-proj-").FullName;
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;
        await loop.PostMessageAsync(id, "[[reply first run]]");
        Assert.Equal("succeeded", (string)(await loop.WaitForFinishedRunsAsync(id, 1)).Single()["status"]!);

        // The agent (or anyone) replaces the registered directory with a link into the daemon's home.
        Directory.Delete(project, recursive: true);
        File.CreateSymbolicLink(project, loop.Home);
        await loop.PostMessageAsync(id, $"[[read {project}/secrets/local-token]]");
        var run = (await loop.WaitForFinishedRunsAsync(id, 2))[1];

        Assert.Equal("failed", (string)run["status"]!);
        var error = (string)run["error"]!;
        Assert.Contains($"dir_path {project} (which leads to {loop.Home}) is the Loop home", error);
        Assert.Contains("the agent was not started", error);
        Assert.Null(run["container_id"]);
        Assert.Null(run["reply"]);
        var conversation = (await loop.GetArrayAsync($"/api/channels/{id}/messages")).ToJsonString();
        Assert.DoesNotContain(loop.LocalToken, conversation);
    }

    [Fact]
    public async Task An_allowed_project_dirs_entry_lets_a_system_directory_through_and_nothing_beside_it()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["allowed_project_dirs"] = new JsonArray("/var/tmp") });

        var channel = await loop.CreateChannelAsync("/var/tmp");

        Assert.Equal("/var/tmp", (string)channel["dir_path"]!);
        Assert.StartsWith("dir_path /var is the system directory /var", await RefusedAsync(loop, "/var"));
        Assert.StartsWith("dir_path /var/lib lies inside the system directory /var", await RefusedAsync(loop, "/var/lib"));
    }
}
