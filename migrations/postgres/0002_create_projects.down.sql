DROP TABLE api_keys;
DROP TABLE project_members;
DROP TABLE projects;
